"""The OpenAPI 3.1 description of the public API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

OPENAPI: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "ordo", "version": "0.1.0"}, "paths": {}}
