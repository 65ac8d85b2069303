"""API keys: create, authenticate, revoke.

A key reads `pk_<prefix>_<secret>`. The prefix finds the row; only a SHA-256 of
the secret is stored and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..errors import Invalid, NotFound
from ..extensions import db, reading_only, utcnow
from .models import SCOPES, ApiKey

KEY_PREFIX = "pk_"
LAST_USED_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def create_key(*, name: str, scopes: list[str], actor: str) -> tuple[ApiKey, str]:
    """Returns (row, plaintext key). The plaintext is shown once and never stored."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 100:
        errors["name"] = ["give a name of 1 to 100 characters"]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        errors["scope"] = [f"give at least one of: {', '.join(SCOPES)}" + (f" (unknown: {', '.join(unknown)})" if unknown else "")]
    if errors:
        raise Invalid("The API key cannot be created.", errors=errors)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=prefix, secret_hash=_digest(secret), scopes=sorted(set(scopes)))
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", actor=actor, target_type="api_key", target_id=key.id, details={"scopes": key.scopes})
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


def revoke(*, prefix: str, actor: str) -> ApiKey:
    key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound("No API key with that prefix.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record("api_key.revoked", actor=actor, target_type="api_key", target_id=key.id)
    return key


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


class KeyCache:
    """Recently verified keys, so a check costs no extra query; a revocation
    takes effect within PREFS_API_KEY_CACHE_SECONDS."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, bytes, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, prefix: str) -> tuple[bytes, Principal] | None:
        entry = self._entries.get(prefix)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    def put(self, prefix: str, secret_hash: bytes, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[prefix] = (time.monotonic() + self.ttl, secret_hash, principal)


def authenticate(presented: str) -> Principal | None:
    """The principal for a presented key, or None. Runs on its own short
    connection so it never holds a lock in the request's transaction."""
    try:
        prefix, secret = presented.removeprefix(KEY_PREFIX).split("_", 1)
    except ValueError:
        return None
    if not presented.startswith(KEY_PREFIX) or not prefix or not secret:
        return None
    cache: KeyCache = current_app.extensions["prefs.key_cache"]
    cached = cache.get(prefix)
    if cached is not None:
        secret_hash, principal = cached
        return principal if hmac.compare_digest(secret_hash, _digest(secret)) else None

    table = ApiKey.__table__
    with reading_only(), db.engine.connect() as conn:
        row = conn.execute(
            sa.select(table.c.id, table.c.name, table.c.secret_hash, table.c.scopes, table.c.last_used_at).where(
                table.c.prefix == prefix, table.c.revoked_at.is_(None)
            )
        ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
        return None
    principal = Principal(row.id, row.name, frozenset(row.scopes))
    cache.put(prefix, row.secret_hash, principal)
    now = utcnow()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        with db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == row.id).values(last_used_at=now))
    return principal


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
