"""Structured (JSON lines) logging that never carries a plain email, a whole IP, an API key or a signed token."""

from __future__ import annotations

import logging
import sys
import time

import orjson

from .redact import scrub

_configured = False
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            # Exception text may quote input; keep the type and the stack, scrubbed.
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


JsonFormatter.converter = time.gmtime


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (servers and test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure(level: str) -> None:
    """Send our logs (and the libraries') to stderr as JSON, once per process."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level)
    if _configured:
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    # Werkzeug's access log prints whole client IPs and URLs carrying tokens.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _configured = True
