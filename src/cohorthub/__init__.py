"""cohorthub: a self-hosted engagement core speaking Braze's public partner protocols."""

__version__ = "0.1.0"
