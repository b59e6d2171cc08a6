"""Technology partners, partner API keys and per-workspace data import keys."""
