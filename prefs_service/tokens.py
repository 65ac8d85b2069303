"""Every signed link: one itsdangerous serializer per purpose.

Each purpose has its own salt, so a token made for one purpose is refused by
every other. Tokens carry ids (subject, channel, purpose), never an email
address: itsdangerous signs, it does not encrypt. They are signed with the
first key of PREFS_SECRET_KEYS and verified with all of them, so rotating keys
keeps old links working.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from .db.types import Base
from .extensions import db

T = TypeVar("T", bound=Base)


@dataclass(frozen=True)
class LinkPurpose:
    salt: str
    max_age: timedelta


PURPOSES = {
    # RFC 8058 links must keep working long after the mail was sent.
    "unsubscribe": LinkPurpose("prefs.unsubscribe.v1", timedelta(days=400)),
    "preferences": LinkPurpose("prefs.preferences.v1", timedelta(days=45)),
    # For a person we erased who asks to hear from us again: it names the
    # keyed hash of their address, never the address.
    "return": LinkPurpose("prefs.return.v1", timedelta(days=3)),
    "verify": LinkPurpose("prefs.verify.v1", timedelta(hours=72)),
    "download": LinkPurpose("prefs.download.v1", timedelta(days=7)),
    "commission": LinkPurpose("prefs.commission.v1", timedelta(days=30)),
    "set-password": LinkPurpose("prefs.set-password.v1", timedelta(hours=24)),
}


class InvalidToken(Exception):
    """Tampered, truncated, expired, for another purpose, or not a token at all."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    cache = current_app.extensions.setdefault("prefs.serializers", {})
    serializer = cache.get(purpose)
    if serializer is None:
        keys = current_app.config["PREFS"].secret_keys
        # itsdangerous wants the signing key last; our setting lists it first.
        serializer = URLSafeTimedSerializer(
            list(reversed(keys)), salt=PURPOSES[purpose].salt, signer_kwargs={"digest_method": hashlib.sha256}
        )
        cache[purpose] = serializer
    return serializer


def sign(purpose: str, payload: dict) -> str:
    return _serializer(purpose).dumps(payload)


def verify(purpose: str, token: str) -> dict:
    """The payload of a valid, unexpired token for `purpose`, or InvalidToken."""
    if not isinstance(token, str) or len(token) > 2048:
        raise InvalidToken(purpose)
    try:
        payload = _serializer(purpose).loads(token, max_age=int(PURPOSES[purpose].max_age.total_seconds()))
    except BadData:
        raise InvalidToken(purpose) from None
    if not isinstance(payload, dict):
        raise InvalidToken(purpose)
    return payload


def row_for(purpose: str, token: str, model: type[T], key: str) -> T | None:
    """The `model` row whose primary key a valid `purpose` token carries under
    `key`, or None for a bad token, a malformed id or a row that is gone."""
    try:
        value = verify(purpose, token).get(key)
        if value is None or isinstance(value, bool):
            return None
        id_type = model.__table__.primary_key.columns[0].type.python_type
        return db.session.get(model, id_type(value) if id_type is not int else int(value))
    except (InvalidToken, TypeError, ValueError):
        return None
