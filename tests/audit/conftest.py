"""A fresh migrated database per test, on SQLite and PostgreSQL (see tests/database_support.py)."""

from database_support import database_url, engine, postgres_template, sessions, sqlite_template

__all__ = ["database_url", "engine", "postgres_template", "sessions", "sqlite_template"]
