"""SQL storage: tables, migrations, repositories and the outbox (SQLite and PostgreSQL)."""
