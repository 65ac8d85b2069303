"""Absolute URLs of the signed links we put in mail and hand to mailers.

The route patterns live here so the web blueprints and the URLs we mint can
never disagree.
"""

from __future__ import annotations

import uuid

from flask import current_app

from . import tokens

UNSUBSCRIBE_ROUTE = "/u/<token>"
PREFERENCES_ROUTE = "/preferences/<token>"
RETURN_ROUTE = "/preferences/return/<token>"
VERIFY_ROUTE = "/privacy-requests/verify/<token>"
DOWNLOAD_ROUTE = "/privacy-requests/download/<token>"
COMMISSION_ROUTE = "/purchase/commission/<token>"
SET_PASSWORD_ROUTE = "/purchase/set-password/<token>"  # noqa: S105 - a route, not a password


def _absolute(route: str, token: str) -> str:
    return current_app.config["PREFS"].base_url + route.replace("<token>", token)


def unsubscribe_url(subject_id: uuid.UUID, channel: str, purpose: str) -> str:
    return _absolute(UNSUBSCRIBE_ROUTE, tokens.sign("unsubscribe", {"s": str(subject_id), "c": channel, "p": purpose}))


def preferences_url(subject_id: uuid.UUID) -> str:
    return _absolute(PREFERENCES_ROUTE, tokens.sign("preferences", {"s": str(subject_id)}))


def return_url(email_hash: bytes) -> str:
    return _absolute(RETURN_ROUTE, tokens.sign("return", {"h": email_hash.hex()}))


def verify_url(request_id: int) -> str:
    return _absolute(VERIFY_ROUTE, tokens.sign("verify", {"r": request_id}))


def download_url(request_id: int) -> str:
    return _absolute(DOWNLOAD_ROUTE, tokens.sign("download", {"r": request_id}))


def commission_url(order_id: int) -> str:
    return _absolute(COMMISSION_ROUTE, tokens.sign("commission", {"o": order_id}))


def set_password_url(order_id: int) -> str:
    return _absolute(SET_PASSWORD_ROUTE, tokens.sign("set-password", {"o": order_id}))


def one_click_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for a marketing message."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
