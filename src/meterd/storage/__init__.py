"""Storage: the async ``Store`` interface and its implementations (memory, SQLite, PostgreSQL)."""
