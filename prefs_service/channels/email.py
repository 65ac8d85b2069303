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
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import unquote, urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from ..private_files import FILE_MODE, private_folder
from ..redact import scrub

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
REASON_LENGTH = 500
MESSAGE_STAGES = {smtplib.SMTPSenderRefused: "sender refused", smtplib.SMTPDataError: "message refused"}


class Refused(Exception):
    """The mail server refused this message for good (an SMTP 5xx reply): sending
    it again would get the same answer. `reason` is the reply, without the
    recipient's address."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def send(message: EmailMessage, *, mail_url: str) -> None:
    """Hand `message` to the mail system named by `mail_url` (PREFS_MAIL_URL).

    file://DIR writes DIR/<message id>.eml (replacing the same message on a
    retry); smtp://, smtp+starttls:// and smtps:// speak SMTP, with
    user:password in the URL when the server wants a login.

    Raises Refused when the server refuses the message for good (5xx); any
    other failure (a 4xx, a lost connection) raises as it is, to be retried.
    """
    url = urlsplit(mail_url)
    if url.scheme == "file":
        _write_file(message, Path(unquote(url.path)))
        return
    host = url.hostname or "localhost"  # config.py refuses a mail URL without a host
    port = url.port or (465 if url.scheme == "smtps" else 25)
    client: smtplib.SMTP
    try:
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=_tls_context())
        else:
            client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    except OSError as error:
        error.add_note(f"mail server {host}:{port}")  # the job's error names the server (never the login)
        raise
    accepted = False
    try:
        if url.scheme == "smtp+starttls":
            client.starttls(context=_tls_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
        accepted = True
    except smtplib.SMTPException as error:
        reason = _permanent_refusal(error)
        if reason is None:
            error.add_note(f"mail server {host}:{port}")
            raise
        raise Refused(_without_addresses(reason, message)) from None
    except OSError as error:
        error.add_note(f"mail server {host}:{port}")
        raise
    finally:
        _say_goodbye(client) if accepted else client.close()


def _permanent_refusal(error: smtplib.SMTPException) -> str | None:
    """What the server said, if it refused this message for good (a 5xx to its
    sender, every recipient or its content); None for a failure worth retrying.

    A 5xx to the session itself (HELO, STARTTLS, AUTH) says nothing about the
    message but that our set-up is wrong: failing every queued mail for it
    would lose them all, while retries go through once it is fixed."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        if replies and all(code >= 500 for code, _ in replies):
            return "recipient refused: " + "; ".join(_reply(code, text) for code, text in replies)
        return None
    stage = MESSAGE_STAGES.get(type(error))
    if stage and isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600:
        return f"{stage}: {_reply(error.smtp_code, error.smtp_error)}"
    return None


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"


def _without_addresses(reason: str, message: EmailMessage) -> str:
    """Servers quote the address they refuse; the reason is kept and logged."""
    for _name, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", [])):
        if address:
            reason = re.sub(re.escape(address), "recipient", reason, flags=re.IGNORECASE)
    return scrub(reason)[:REASON_LENGTH]


def _say_goodbye(client: smtplib.SMTP) -> None:
    # The message was accepted: a QUIT that fails changes nothing about it (and
    # must not make the job send it again).
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


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
