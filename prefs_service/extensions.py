"""Extension objects shared by every package, bound to an app in create_app()."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from .db.types import Base

db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
csrf = CSRFProtect()


def client_key() -> str:
    """Rate-limit key for a client: a keyed hash of its address, so the limiter's
    storage (Redis in production) never holds a whole IP."""
    key = current_app.config["PREFS"].secret_keys[0].encode()
    return "client:" + hmac.new(key, (get_remote_address() or "").encode(), hashlib.sha256).hexdigest()[:32]


# Limits are declared on the views that need them (the public forms), not globally.
limiter = Limiter(key_func=client_key, default_limits=[], headers_enabled=True)
