"""Make personal data safe to store as evidence or to log."""

from __future__ import annotations

import ipaddress
import re
import smtplib
import traceback

from .errors import DomainError

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def truncate_ip(value: str) -> str:
    """203.0.113.77 -> 203.0.113.0/24; 2001:db8:1:2::5 -> 2001:db8:1::/48.

    Raises ValueError for something that is not an IP address.
    """
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# Local part: anything an address may hold, internationalised ones (RFC 6531)
# included; domain: labels of letters, digits and hyphens in any script, ending
# in a top-level label of letters (or its xn-- form).
# (Matches start where a local part can: a long run without "@" costs one pass.)
_EMAIL = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])([\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]*@((?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[\w-]+))"
)
_IPV4 = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b")
# Anything shaped like an IPv6 address (an IPv4 tail and a zone included);
# ipaddress decides whether it is one, so clock times and MACs stay.
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)(?=:*[0-9A-Fa-f])"
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})(?:%[\w.]+)?(?![\w:])"
)
# API keys read pk_<prefix>_<secret> (see access/service.py): the prefix names the key, the rest is the secret.
_API_KEY = re.compile(r"\b(pk_[0-9A-Za-z]+_)[\w-]+")
# itsdangerous signed tokens: payload (a leading "." when compressed), timestamp, signature.
_SIGNED_TOKEN = re.compile(r"(?<![\w.-])\.?[\w-]+\.[\w-]{4,12}\.[\w-]{27,}(?![\w-])")
# The paths of signed links (see links.py): whatever follows is a token, even cut short.
_LINK_PATH = re.compile(
    r"(/(?:u|preferences/return|preferences|privacy-requests/(?:verify|download)|purchase/(?:commission|set-password))/)[^/?#\s\"'<>]+"
)


def scrub(text: str) -> str:
    """Mask in free text (logs, stored errors): email addresses (but for their
    first letter and domain), IP addresses (but for their network), API key
    secrets and signed link tokens."""
    if "@" in text:
        text = _EMAIL.sub(r"\1***@\2", text)
    if "pk_" in text:
        text = _API_KEY.sub(r"\1***", text)
    if "/" in text:
        text = _LINK_PATH.sub(r"\1***", text)
    if "." in text:
        text = _SIGNED_TOKEN.sub("***", text)
    if ":" in text:
        text = _IPV6.sub(_mask_ipv6, text)
    return _IPV4.sub(r"\1.x", text)


def _mask_ipv6(match: re.Match) -> str:
    candidate = match.group(0)
    try:
        address = ipaddress.IPv6Address(candidate.split("%", 1)[0])
    except ValueError:
        return candidate
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)  # left for the IPv4 rule to mask
    return truncate_ip(str(address))


def describe_exception(exc: BaseException, *, limit: int = 1000) -> str:
    """What went wrong, safe to store and log: the exception's class, a message
    naming the folder or host involved, and the line of ours where it was met.

    Only messages whose shape we know are kept (the system's text about a file
    or a connection, a mail server's reply, our own rule messages), scrubbed;
    any other message may quote a row's values, so only its class is kept.
    Notes added with add_note (the mail channel names its server) are scrubbed too."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    detail = ""
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        detail = str(exc)
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{code} {_without(address, _text(reply))}" for address, (code, reply) in exc.recipients.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, DomainError):
        detail = exc.message
    notes = [note for note in getattr(exc, "__notes__", ()) if isinstance(note, str)]
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    # Our own line that met the error says more than the library's that raised it.
    ours = [f for f in frames if "/prefs_service/" in f.filename] or frames[-1:]
    where = f" (at {ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno})" if ours else ""
    text = name + (f": {detail}" if detail else "") + "".join(f"; {note}" for note in notes) + where
    # Staff read this (the jobs page, their alert mail): no address at all, not even masked.
    return scrub(_EMAIL.sub("<address>", " ".join(text.split())))[:limit]


def _without(address: object, reply: str) -> str:
    """A mail server's reply, without the address it refused (servers quote it)."""
    return re.sub(re.escape(str(address)), "<recipient>", reply, flags=re.IGNORECASE) if address else reply


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
