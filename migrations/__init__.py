"""Alembic migrations, shipped inside the package as prefs_service.migrations."""
