"""A replica's HTTP API: the app, its views, admission control and the OpenAPI document."""
