"""A replica's HTTP API over a narrow port (port.py), never the node: the public app, the admin
app, admission control, serving on hypercorn and the OpenAPI document."""
