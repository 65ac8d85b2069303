"""Identifier kinds, their canonical form and their keyed hash.

Each identifier is normalised by its channel (channels/) and found by
HMAC-SHA256 of "kind:canonical value" under PREFS_IDENTIFIER_KEY, which never
rotates: lookups, bulk checks and suppressions need only the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from flask import Flask, current_app

from .. import channels
from ..errors import Invalid

# The kinds of contact identifier a person may have; each is also the API
# field that carries it.
KINDS = ("email", "phone", "fax", "postal_address")
# An erased person's CRM reference is kept only as a keyed hash, a suppression
# of this kind, so that a later re-sync from the CRM is recognised.
EXTERNAL_REF = "external_ref"
# The label each kind is hashed under. Postal addresses were hashed as
# "postal" before the kind took its API field's name, and a suppression of an
# erased person's address holds nothing else to re-hash: the label stays.
_HASH_LABELS = {"postal_address": "postal"}


def init_app(app: Flask) -> None:
    key = app.config["PREFS"].identifier_key.encode()
    app.extensions["prefs.identifier_hmac"] = hmac.new(key, digestmod=hashlib.sha256)


def identifier_hash(kind: str, canonical: str) -> bytes:
    """HMAC-SHA256 of "kind:value" under the identifier key."""
    mac = current_app.extensions["prefs.identifier_hmac"].copy()
    mac.update(f"{_HASH_LABELS.get(kind, kind)}:{canonical}".encode())
    digest: bytes = mac.digest()
    return digest


def identifier_hashes(kind: str, canonicals: Iterable[str]) -> list[bytes]:
    """identifier_hash() of many values of one kind (bulk checks hash thousands)."""
    base = current_app.extensions["prefs.identifier_hmac"]
    prefix = f"{_HASH_LABELS.get(kind, kind)}:"
    out = []
    for value in canonicals:
        mac = base.copy()
        mac.update((prefix + value).encode())
        out.append(mac.digest())
    return out


def normalize_fields(values: Mapping[str, object]) -> dict[str, str | None]:
    """Canonical identifiers from API fields ({"email": ..., ...}); Invalid names each bad one.

    A None value is kept (it means "remove" in an update).
    """
    canonical: dict[str, str | None] = {}
    errors = {}
    for kind in KINDS:
        if kind not in values:
            continue
        if values[kind] is None:
            canonical[kind] = None
            continue
        try:
            canonical[kind] = channels.normalize(kind, values[kind])
        except channels.InvalidIdentifier as exc:
            errors[kind] = [str(exc)]
    if errors:
        raise Invalid("Some identifiers are not valid.", errors=errors)
    return canonical
