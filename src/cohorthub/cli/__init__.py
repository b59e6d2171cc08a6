"""The `cohorthub` command line: small command groups over the services."""
