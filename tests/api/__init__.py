"""API tests: one shared cluster per package run (a real package, so the package-scoped fixture ends with it)."""
