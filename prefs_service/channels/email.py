"""Email addresses: the identifier of the email channel.

Canonical form: trimmed, the whole address lower-cased (a missed suppression is
worse than two spellings merged), and the domain in its IDNA (ASCII) form.
"""

from __future__ import annotations

import functools
import os
import re
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from ..private_files import FILE_MODE, private_folder

NAME = "email"
LABEL = "Email"
IDENTIFIER_KIND = "email"
PURPOSES = (
    ("newsletter", "Newsletter", True),
    ("product_updates", "Product updates", True),
    ("offers", "Special offers", True),
    ("transactional", "Receipts, delivery and account messages", False),
)

# Plain ASCII dot-atom addresses make up nearly every real list. For those the
# canonical form is simply the lower-cased address, so bulk checks skip the
# full validator (~40 µs each); everything else goes through email-validator.
# tests/channels/test_email.py proves the two paths agree.
_FAST_PATH = re.compile(
    r"(?P<local>[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}))",
    re.IGNORECASE | re.ASCII,
)


def normalize(value: str) -> str:
    value = value.strip()
    match = _FAST_PATH.fullmatch(value)
    if (
        match
        and len(value) <= 254
        and len(match["local"]) <= 64
        and "--" not in match["domain"]
        and match["tld"].lower() not in SPECIAL_USE_DOMAIN_NAMES
    ):
        return value.lower()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return f"{result.local_part}@{result.ascii_domain}".lower()


SMTP_TIMEOUT_SECONDS = 30


def send(message: EmailMessage, *, mail_url: str) -> None:
    """Hand `message` to the mail system named by `mail_url` (PREFS_MAIL_URL).

    file://DIR writes DIR/<message id>.eml (replacing the same message on a
    retry); smtp://, smtp+starttls:// and smtps:// speak SMTP, with
    user:password in the URL when the server wants a login.
    """
    url = urlsplit(mail_url)
    if url.scheme == "file":
        _write_file(message, Path(unquote(url.path)))
        return
    if url.scheme == "smtps":
        client = smtplib.SMTP_SSL(url.hostname, url.port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=_tls_context())
    else:
        client = smtplib.SMTP(url.hostname, url.port or 25, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        if url.scheme == "smtp+starttls":
            client.starttls(context=_tls_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the system's CA certificates took a quarter of a second per mail
    # on a busy host; one context serves every connection (and thread).
    return ssl.create_default_context()


def _file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9.@-]", "_", message_id.strip("<>")) + ".eml"


def _write_file(message: EmailMessage, folder: Path) -> None:
    private_folder(folder)
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.fchmod(fd, FILE_MODE)  # a mail carries the address and the body's links
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(temporary, folder / _file_name(message["Message-ID"]))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def forget(message_ids: list[str], *, mail_url: str) -> int:
    """Delete the .eml files a file:// outbox holds for these Message-IDs (each
    holds a person's address and mail); returns how many. SMTP mail has left
    us, so there is nothing to delete there."""
    url = urlsplit(mail_url)
    if url.scheme != "file":
        return 0
    folder = Path(unquote(url.path))
    removed = 0
    for message_id in message_ids:
        if not message_id:
            continue  # a notice never sent has no Message-ID
        try:
            (folder / _file_name(message_id)).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed
