"""WSGI entry point: `gunicorn wsgi:app`. Start `prefs worker` beside it when PREFS_BROKER_URL is set."""

from prefs_service import create_app

app = create_app()
