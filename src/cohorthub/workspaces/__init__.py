"""Workspaces and their REST API keys."""
