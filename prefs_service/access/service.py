"""API keys: create, authenticate, revoke.

A key reads `pk_<prefix>_<secret>`. The prefix finds the row; only a SHA-256 of
the secret is stored and compared in constant time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from flask import current_app

from .. import audit, channels
from ..clock import utcnow
from ..db import scopes
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .models import ADMIN, REVIEWER, ROLES, SCOPES, ApiKey, StaffUser

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
    with scopes.read_only(), db.engine.connect() as conn:
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


# --- staff accounts --------------------------------------------------------------------

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


def create_staff(*, email: str, password: str, actor: str, role: str = REVIEWER) -> StaffUser:
    try:
        email = channels.normalize("email", email)
    except channels.InvalidIdentifier as exc:
        raise Invalid("Not a valid email address.", errors={"email": [str(exc)]}) from None
    _check_password(password)
    _check_role(role)
    if db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict("A staff account with that address exists.", errors={"email": ["already exists"]})
    user = StaffUser(email=email, password_hash=_hasher.hash(password), role=role)
    db.session.add(user)
    db.session.flush()
    audit.record("staff.created", actor=actor, target_type="staff_user", target_id=user.id, details={"role": role})
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid("The password is too short.", errors={"password": [f"use at least {MIN_PASSWORD_LENGTH} characters"]})


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid("Unknown role.", errors={"role": [f"must be one of: {', '.join(ROLES)}"]})


class LockedOut(Exception):
    """Too many failed logins; try again after `until`."""

    def __init__(self, until: datetime):
        super().__init__(until)
        self.until = until


def staff_login(*, email: str, password: str) -> StaffUser | None:
    """The staff user for these credentials, or None. Five failures in a row lock
    the account for fifteen minutes (LockedOut), even for the right password.
    The answer takes as long for an unknown address as for a wrong password."""
    try:
        email = channels.normalize("email", email or "")
    except channels.InvalidIdentifier:
        email = ""
    user = db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email, StaffUser.active.is_(True))) if email else None
    now = utcnow()
    locked_until = user.locked_until if user is not None and user.locked_until is not None and user.locked_until > now else None
    if user is None or locked_until is not None:
        # The same work as checking a real password, so that neither an unknown
        # address nor a locked account answers faster.
        with contextlib.suppress(VerifyMismatchError):
            _hasher.verify(_dummy_hash(), password or "")
        if locked_until is not None:
            raise LockedOut(locked_until)
        return None
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerifyMismatchError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record("staff.locked_out", actor="system", target_type="staff_user", target_id=user.id)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record("staff.login", actor=f"staff:{user.id}", target_type="staff_user", target_id=user.id)
    return user


def active_staff_emails() -> list[str]:
    return list(db.session.scalars(sa.select(StaffUser.email).where(StaffUser.active.is_(True)).order_by(StaffUser.id)))


def staff_session_user(user_id: object, session_version: object) -> StaffUser | None:
    if not isinstance(user_id, int):
        return None
    user = db.session.get(StaffUser, user_id)
    if user is None or not user.active or user.session_version != session_version:
        return None
    return user


def staff_logout(user: StaffUser) -> None:
    """Ends every session of this user: their cookies carry the old version."""
    user.session_version += 1
    audit.record("staff.logout", actor=f"staff:{user.id}", target_type="staff_user", target_id=user.id)


# --- managing staff accounts (the CLI and the admin pages) ------------------------------


def list_staff() -> list[StaffUser]:
    return list(db.session.scalars(sa.select(StaffUser).order_by(StaffUser.email)))


def staff_by_email(email: str) -> StaffUser:
    """The account for `email` (any spelling of it); NotFound otherwise."""
    try:
        email = channels.normalize("email", email or "")
    except channels.InvalidIdentifier:
        raise NotFound("No staff account with that address.") from None
    user = db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email))
    if user is None:
        raise NotFound("No staff account with that address.")
    return user


def staff_by_id(user_id: object) -> StaffUser:
    user = db.session.get(StaffUser, user_id) if str(user_id).isdigit() else None
    if user is None:
        raise NotFound("No such staff account.")
    return user


def is_locked(user: StaffUser) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


def _refuse_losing_the_last_admin(user: StaffUser) -> None:
    """Somebody must always be able to manage accounts."""
    if not (user.active and user.role == ADMIN):
        return
    # Locked, so two admins disabling each other at once cannot both pass
    # (PostgreSQL; SQLite's writers take turns anyway).
    admins = db.session.scalars(
        sa.select(StaffUser.id).where(StaffUser.active.is_(True), StaffUser.role == ADMIN).order_by(StaffUser.id).with_for_update()
    ).all()
    if not set(admins) - {user.id}:
        raise Conflict("This account is the last active admin; make another account admin first.")


def disable_staff(*, user: StaffUser, actor: str) -> bool:
    """Ends the account's sessions and refuses its sign-ins. Returns whether it changed."""
    if not user.active:
        return False
    _refuse_losing_the_last_admin(user)
    user.active = False
    user.session_version += 1
    audit.record("staff.disabled", actor=actor, target_type="staff_user", target_id=user.id)
    return True


def enable_staff(*, user: StaffUser, actor: str) -> bool:
    if user.active:
        return False
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    audit.record("staff.enabled", actor=actor, target_type="staff_user", target_id=user.id)
    return True


def unlock_staff(*, user: StaffUser, actor: str) -> bool:
    """Lifts a lock-out after too many wrong passwords. Returns whether it was locked."""
    was_locked = is_locked(user)
    user.failed_logins = 0
    user.locked_until = None
    if was_locked:
        audit.record("staff.unlocked", actor=actor, target_type="staff_user", target_id=user.id)
    return was_locked


def new_password() -> str:
    """A random password to hand over once (20 characters, easy to type)."""
    return secrets.token_urlsafe(15)


def reset_password(*, user: StaffUser, password: str, actor: str) -> None:
    """Sets a new password, lifts any lock-out and ends every session of the account."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.session_version += 1
    audit.record("staff.password_reset", actor=actor, target_type="staff_user", target_id=user.id)


def set_role(*, user: StaffUser, role: str, actor: str) -> bool:
    _check_role(role)
    if user.role == role:
        return False
    if role != ADMIN:
        _refuse_losing_the_last_admin(user)
    previous, user.role = user.role, role
    audit.record("staff.role_changed", actor=actor, target_type="staff_user", target_id=user.id, details={"from": previous, "to": role})
    return True


# --- naming who did something ----------------------------------------------------------

# Actors recorded without an id, as people should read them.
FIXED_ACTOR_NAMES = {
    "requester": "the requester",
    "agent": "an authorised agent",
    "subject": "the person themselves",
    "customer": "the customer",
    "system": "system",
    "cli": "the command line",
    "cli:import": "a command-line import",
    "stripe": "Stripe",
    "erasure": "the erasure",
}


def actor_names(actors: Iterable[str]) -> dict[str, str]:
    """How each recorded actor reads on a page: a staff member's address, an API
    key's name, "the requester"; an actor of a kind not known here as it was recorded."""
    actors = set(actors)
    staff_ids = {_id_of(a, "staff:") for a in actors} - {None}
    key_ids = {_id_of(a, "api_key:") for a in actors} - {None}
    staff = dict(db.session.execute(sa.select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))).all())
    keys = dict(db.session.execute(sa.select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))).all())
    names = {}
    for actor in actors:
        staff_id, key_id = _id_of(actor, "staff:"), _id_of(actor, "api_key:")
        if staff_id is not None and staff_id in staff:
            names[actor] = staff[staff_id]
        elif key_id is not None and key_id in keys:
            names[actor] = f"API key “{keys[key_id]}”"
        elif actor.startswith("request:"):
            names[actor] = f"request {actor.removeprefix('request:')}"
        elif actor.startswith("order:"):
            names[actor] = f"order {actor.removeprefix('order:')}"
        else:
            names[actor] = FIXED_ACTOR_NAMES.get(actor, actor)
    return names


def _id_of(actor: str, prefix: str) -> int | None:
    rest = actor.removeprefix(prefix)
    return int(rest) if actor.startswith(prefix) and rest.isdigit() else None


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a real password, only for equal timing")
