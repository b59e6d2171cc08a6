"""The dashboard: server-rendered screens for marketers, an edge like `api/` and `cli/`."""
