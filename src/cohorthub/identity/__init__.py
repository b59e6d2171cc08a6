"""Users and their identifiers: external ids, aliases, device ids; identify and merge."""
