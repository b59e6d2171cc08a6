"""Routes for users (filled in by its feature work)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from cohorthub.api.openapi import Operation

ROUTES: list[BaseRoute] = []
OPERATIONS: list[Operation] = []
