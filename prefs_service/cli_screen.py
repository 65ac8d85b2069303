"""`prefs screen`: screen a whole mailing list from the command line, as
POST /v1/consent/screen does, with a progress bar."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import click
from flask.cli import with_appcontext

from . import channels, metrics
from .cli_common import fail, require_migrated
from .consent import lists
from .errors import DomainError
from .subjects.refs import CHECK_KEYS

# The format a file's extension says; `-` (stdin) and others need --format.
FORMAT_OF_SUFFIX = {".csv": lists.CSV, ".txt": lists.CSV, ".ndjson": lists.NDJSON, ".jsonl": lists.NDJSON}


class _Counted:
    """A binary stream that tells the progress bar how many bytes were read."""

    def __init__(self, stream: IO[bytes], progress: Any):
        self.stream, self.progress = stream, progress

    def read(self, size: int = -1) -> bytes:
        block = self.stream.read(size)
        self.progress(len(block))
        return block


def _size(stream: IO[bytes]) -> int | None:
    """The file's size, for the progress bar; None for a pipe (stdin)."""
    name = getattr(stream, "name", None)
    if not isinstance(name, str) or name.startswith("<"):
        return None
    try:
        size = Path(name).stat().st_size
    except OSError:
        return None
    return size or None


class _NoBar:
    """Where the size is unknown (a pipe): no bar, the summary says how many."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


@click.command("screen")
@click.argument("file", type=click.File("rb"))
@click.option("--channel", required=True, type=click.Choice(list(channels.CHANNELS)), help="The channel the list is for.")
@click.option("--purpose", required=True, help="The purpose the list is for (newsletter, marketing, …).")
@click.option("--identifier-type", type=click.Choice(CHECK_KEYS), help="What the recipients are (default: the channel's own identifier).")
@click.option("--column", help="CSV: the header row's name of the recipients' column; NDJSON: the objects' field (default recipient).")
@click.option("--format", "fmt", type=click.Choice(list(lists.MEDIA_TYPES)), help="The list's format (default: from FILE's extension).")
@click.option("--out", type=click.File("wb"), default="-", show_default=True, help="Where the answers go, in the list's format.")
@with_appcontext
def screen(file: IO[bytes], channel: str, purpose: str, identifier_type: str | None, column: str | None, fmt: str | None, out: IO[bytes]):
    """Screen a whole list FILE (`-` for stdin) for CHANNEL and PURPOSE: one
    answer line per recipient, in the list's format and order (recipient,
    allowed, reason, register), as POST /v1/consent/screen answers."""
    if fmt is None:
        fmt = FORMAT_OF_SUFFIX.get(Path(file.name).suffix.lower()) if file.name != "<stdin>" else None
        if fmt is None:
            raise click.UsageError("say the list's format with --format csv or --format ndjson (FILE's extension does not)")
    try:
        screening = lists.prepare(channel=channel, purpose=purpose, identifier_type_given=identifier_type, format=fmt, column=column)
    except DomainError as exc:
        fail(exc)
    require_migrated()
    started = time.monotonic()
    reasons: Counter[str] = Counter()
    allowed = 0
    size = _size(file)
    bar: Any = click.progressbar(length=size, label="Screening", file=sys.stderr) if size else _NoBar()
    with bar:
        try:
            items = lists.items(_Counted(file, bar.update), screening)  # type: ignore[arg-type]  # read() is all it needs
        except DomainError as exc:
            fail(exc)
        out.write(lists.header(screening))
        for answered in lists.screen(screening, items):
            metrics.count_checks(result for _, result in answered)
            reasons.update(result.reason for _, result in answered)
            allowed += sum(result.allowed for _, result in answered)
            out.write(lists.encode(screening, answered))
    out.flush()
    summary = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    click.echo(
        f"Screened {sum(reasons.values())} recipients in {time.monotonic() - started:.1f}s: {allowed} allowed ({summary or 'none'}).",
        err=True,
    )
