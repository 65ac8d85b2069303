"""Importing a register's file: a full list swapped in atomically, or a delta.

An import is several transactions by design, so it commits its own steps
(it is the boundary: the CLI command and the API view only call it):

Full import
1. a new `RegisterList` is written as `loading`, and committed;
2. its entries stream in, in chunks each committed (checks read only the
   current list, so a loading list's entries are invisible to them), through
   the backend's fastest bulk path (db/backend.py: COPY on PostgreSQL,
   executemany on SQLite); the file is read line by line, in constant memory.
   On PostgreSQL they go into a table of the list's own with no index, which
   gets its key once full and becomes the list's partition (partitions.py);
3. one short transaction marks the old current list `replaced` and the new
   one `current`: a check sees the old list or the new, never half;
4. the replaced list's entries stay for REPLACED_KEPT: other processes keep
   it as current for up to screening.CACHE_SECONDS and probe it, and a probe
   of a list whose entries are gone would answer that nobody is listed. The
   next full import (at its start, and again once its list is current)
   deletes the entries (drops the partitions) of lists replaced longer ago,
   and of failed lists; so a register holds its current list and the one it
   replaced, plus, only where full imports follow each other within
   REPLACED_KEPT, those replaced since.
If anything fails, or no line at all was accepted (a wrong file would
otherwise empty the register), the new list is marked `failed`, its entries
are deleted, and the old list stays current.

Delta import: one transaction adds the lines it lists to the current full
list's entries and takes away those marked as removals (parsers.py says how
each format marks them). A delta with no current full list is refused. An MPS
entry is an address, and several people may be listed at one: a removal takes
its record away (models.MailRecord), and the address only once no record
keeps it listed.

Rejected lines never stop an import: each is counted, written to the report
(if one is given) with its line number, and the first few are returned.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import aliased

from ..clock import utcnow
from ..db.backend import CACHE_SIZE, backend
from ..errors import Conflict, Invalid
from ..extensions import db
from . import REGISTERS, parsers, partitions, screening
from .models import APPLIED, CURRENT, DELTA, FAILED, FULL, LOADING, REPLACED, MailRecord, RegisterEntry, RegisterList

# How many rejections an import's summary lists (the report file lists all).
FIRST_REJECTIONS = 20
# Rows per committed chunk of a full import: each chunk holds SQLite's write
# lock only for a few seconds, so people's own writes still get their turn
# (and on PostgreSQL bounds what a retried chunk keeps in memory).
CHUNK_ROWS = 250_000
# A list still `loading` after this long was left by an import that died.
ABANDONED_AFTER = timedelta(hours=6)
# A replaced list's entries are kept this long after the next list went live: processes
# cache the current list for screening.CACHE_SECONDS, and a check that read it from their
# cache may still be probing it; the rest is room for clocks that differ between hosts.
REPLACED_KEPT = timedelta(seconds=6 * screening.CACHE_SECONDS)
ENTRIES = RegisterEntry.__table__.name
RECORDS = MailRecord.__table__.name
logger = logging.getLogger(__name__)
Progress = Callable[[int], None]


class ImportFailed(Exception):
    """The import could not finish; its list is marked failed and the old list stays current."""

    def __init__(self, message: str, summary: ImportSummary):
        super().__init__(message)
        self.message = message
        self.summary = summary


@dataclass
class ImportSummary:
    register: str
    kind: str
    list_date: date
    list_id: int = 0
    status: str = LOADING
    accepted: int = 0
    rejected: int = 0
    removed: int = 0
    entries: int = 0
    seconds: float = 0.0
    rejections: list[parsers.Rejection] = field(default_factory=list)


class _Counter:
    """Counts the parser's output, writes rejections to the report, passes entries on."""

    def __init__(self, summary: ImportSummary, report: IO[str] | None):
        self.summary = summary
        self.report = report

    def entries(self, parsed: Iterable[parsers.Parsed]) -> Iterator[parsers.Entry]:
        summary, report = self.summary, self.report
        for item in parsed:
            if type(item) is parsers.Entry:
                summary.accepted += 1
                yield item
                continue
            assert isinstance(item, parsers.Rejection)
            summary.rejected += 1
            if len(summary.rejections) < FIRST_REJECTIONS:
                summary.rejections.append(item)
            if report is not None:
                report.write(f"line {item.line_no}: {item.reason}\n")


def _lines(stream: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    if progress is None:
        yield from stream
        return
    done = 0
    for count, line in enumerate(stream, 1):
        done += len(line)
        if count % 65536 == 0:
            progress(done)
            done = 0
        yield line
    progress(done)


def _validate(register: str) -> None:
    if register not in REGISTERS:
        raise Invalid(f"No register {register!r}; the registers are {', '.join(REGISTERS)}.", errors={"register": ["unknown register"]})


def _start(register: str, kind: str, list_date: date, imported_by: str) -> RegisterList:
    """The import's list row, after refusing a second import of the same register at once."""
    backend().lock_key(f"register-import:{register}")
    loading = db.session.scalars(sa.select(RegisterList).where(RegisterList.register == register, RegisterList.status == LOADING)).all()
    for other in loading:
        if other.started_at > utcnow() - ABANDONED_AFTER:
            raise Conflict(f"An import of {register} is loading (list {other.id}, started {other.started_at:%Y-%m-%d %H:%M} UTC).")
        other.status, other.finished_at = FAILED, utcnow()
    row = RegisterList(register=register, kind=kind, list_date=list_date, status=LOADING, imported_by=imported_by)
    db.session.add(row)
    db.session.flush()
    return row


def current_list(register: str) -> RegisterList | None:
    return db.session.scalars(
        sa.select(RegisterList).where(RegisterList.register == register, RegisterList.status == CURRENT, RegisterList.kind == FULL)
    ).first()


def import_file(
    *,
    register: str,
    path: Path,
    list_date: date,
    delta: bool,
    imported_by: str,
    report: IO[str] | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import `path` into `register` (see the module's docstring); commits its own steps.
    Raises Invalid or Conflict before starting, ImportFailed after."""
    _validate(register)
    started = time.monotonic()
    summary = ImportSummary(register=register, kind=DELTA if delta else FULL, list_date=list_date)
    with path.open("rb") as stream:
        if delta:
            _import_delta(summary, stream, imported_by, _Counter(summary, report), progress)
        else:
            _import_full(summary, stream, imported_by, _Counter(summary, report), progress)
    summary.seconds = time.monotonic() - started
    return summary


def _import_full(summary: ImportSummary, stream: IO[bytes], imported_by: str, counter: _Counter, progress: Progress | None) -> None:
    register = summary.register
    try:
        row = _start(register, FULL, summary.list_date, imported_by)
        summary.list_id = list_id = row.id
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    try:
        _delete_unreachable(register)  # before loading: the register never holds more than it must
        entries = counter.entries(parsers.parse(register, _lines(stream, progress), delta=False))
        summary.entries = _load(list_id, entries, with_records=register == "mps")
        if summary.accepted == 0:
            raise ImportFailed("No line of the file was accepted; the current list stays.", summary)
        _swap(summary)
    except BaseException as exc:
        _fail(summary)
        if isinstance(exc, ImportFailed):
            raise
        if isinstance(exc, Exception):
            raise ImportFailed(f"The import failed ({type(exc).__name__}); the current list stays.", summary) from exc
        raise
    try:
        _delete_unreachable(register)
    except Exception:  # the list is live: what is left to delete goes with the next import
        db.session.rollback()
        logger.warning("%s import %s is current; deleting unreachable lists failed", register, summary.list_id, exc_info=True)


def _load(list_id: int, entries: Iterator[parsers.Entry], *, with_records: bool) -> int:
    """Stream `entries` into the list's entries in committed chunks; how many entries it holds.
    On PostgreSQL into a table of the list's own, indexed and attached once full (partitions.py).
    `with_records` (MPS): each entry's record too (MailRecord)."""
    inserted = 0
    raw = db.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        chunked = backend().name == "sqlite"
        if chunked:
            driver.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading: the new list's index fits
        try:
            table = _loading_table(driver, list_id)
            while (first := next(entries, None)) is not None:
                chunk: Iterable[parsers.Entry] = itertools.chain((first,), itertools.islice(entries, CHUNK_ROWS - 1))
                if with_records:
                    chunk = list(chunk)  # read twice: entries, then records
                if chunked:
                    driver.execute("BEGIN IMMEDIATE")  # the connection is in autocommit otherwise (db/backend.py)
                rows = ((list_id, e.key_hash, e.flag) for e in chunk)
                inserted += backend().bulk_insert(driver, table, ("list_id", "key_hash", "flag"), rows)
                if with_records:
                    records = ((list_id, e.key_hash, e.record) for e in chunk)
                    backend().bulk_insert(driver, RECORDS, ("list_id", "key_hash", "record_hash"), records)
                driver.commit()
            if table != ENTRIES and inserted:  # an empty list fails, and its loose table drops without locking checks out
                with driver.cursor() as cursor:
                    inserted = partitions.attach(cursor, list_id, inserted)
                driver.commit()
                with driver.cursor() as cursor:
                    partitions.analyze(cursor, list_id)
                driver.commit()
        except BaseException:
            driver.rollback()
            raise
        finally:
            if chunked:
                driver.execute(CACHE_SIZE)  # as every connection has it
    finally:
        raw.close()
    return inserted


def _loading_table(driver: Any, list_id: int) -> str:
    """Where a full list's rows go: the entries table, or on partitioned PostgreSQL a new table of the list's own."""
    if backend().name != "postgresql":
        return ENTRIES
    with driver.cursor() as cursor:
        table = partitions.create(cursor, list_id) if partitions.partitioned(cursor) else ENTRIES
    driver.commit()
    return table


def _delete_entries(list_ids: list[int]) -> None:
    """Delete the entries of `list_ids` and commit. On partitioned PostgreSQL
    each list's table is dropped first (its rows are not deleted one by one); a
    table that checks kept busy stays, with its rows, for the next import."""
    db.session.commit()  # dropping a partition waits for every transaction that read the entries, ours too
    busy: list[int] = []
    if list_ids and backend().name == "postgresql":
        raw = db.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            with driver.cursor() as cursor:
                if partitions.partitioned(cursor):
                    busy = partitions.drop(cursor, list_ids)  # commits, or rolls back on the timeout
            driver.commit()
        finally:
            raw.close()
    gone = [list_id for list_id in list_ids if list_id not in busy]
    if gone:
        db.session.execute(sa.delete(RegisterEntry).where(RegisterEntry.list_id.in_(gone)))
    if list_ids:  # records serve only deltas to the current list: a busy partition's go too
        db.session.execute(sa.delete(MailRecord).where(MailRecord.list_id.in_(list_ids)))
    db.session.commit()


def _swap(summary: ImportSummary) -> None:
    """The one short transaction that makes the new list current."""
    try:
        backend().lock_key(f"register-import:{summary.register}")
        made_current = cast(
            CursorResult[Any],
            db.session.execute(
                sa.update(RegisterList)
                # Still loading: an import so slow that the next one marked it failed (and took its
                # entries away) must not go live with part of a list.
                .where(RegisterList.id == summary.list_id, RegisterList.status == LOADING)
                # Entries written, not lines: a number listed twice is one (registers/status.py counts from it).
                .values(status=CURRENT, finished_at=utcnow(), accepted=summary.entries, rejected=summary.rejected)
            ),
        )
        if made_current.rowcount != 1:
            raise Conflict(f"The {summary.register} import was given up as abandoned while it loaded; import the file again.")
        db.session.execute(
            sa.update(RegisterList)
            .where(
                RegisterList.register == summary.register,
                RegisterList.status == CURRENT,
                RegisterList.kind == FULL,
                RegisterList.id != summary.list_id,
            )
            .values(status=REPLACED)
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    screening.forget_current_lists()
    summary.status = CURRENT


def _fail(summary: ImportSummary) -> None:
    db.session.rollback()
    failed = db.session.execute(
        sa.update(RegisterList)
        # Not once current: an interruption just after the swap committed leaves the list live.
        .where(RegisterList.id == summary.list_id, RegisterList.status != CURRENT)
        .values(status=FAILED, finished_at=utcnow(), accepted=summary.accepted, rejected=summary.rejected)
    )
    if cast("CursorResult[Any]", failed).rowcount == 1:
        _delete_entries([summary.list_id])
        summary.status = FAILED
    else:
        db.session.commit()


def _delete_unreachable(register: str) -> None:
    """Entries no check can reach now: a failed list's (never current), and a
    replaced list's once a later list has been live longer than REPLACED_KEPT
    (no process caches it as current any more). One import of a register runs
    at a time, so lists go live in the order of their ids."""
    later = aliased(RegisterList)
    superseded_long_ago = (
        sa.select(later.id)
        .where(
            later.register == RegisterList.register,
            later.kind == FULL,
            later.id > RegisterList.id,
            later.status.in_((CURRENT, REPLACED)),
            later.finished_at <= utcnow() - REPLACED_KEPT,
        )
        .exists()
    )
    unreachable = sa.select(RegisterList.id).where(
        RegisterList.register == register,
        sa.or_(RegisterList.status == FAILED, sa.and_(RegisterList.status == REPLACED, superseded_long_ago)),
    )
    _delete_entries(list(db.session.scalars(unreachable)))


DELTA_BATCH = 2000


def _import_delta(summary: ImportSummary, stream: IO[bytes], imported_by: str, counter: _Counter, progress: Progress | None) -> None:
    register = summary.register
    try:
        full = current_list(register)
        if full is None:
            raise Conflict(f"{register} has no current full list: import a full list before a delta.")
        row = _start(register, DELTA, summary.list_date, imported_by)
        summary.list_id = row.id
        entries = counter.entries(parsers.parse(register, _lines(stream, progress), delta=True))
        # Consecutive lines of one kind (additions or removals) go together, in file order.
        for remove, group in itertools.groupby(entries, key=lambda e: e.remove):
            for batch in _batched(group, DELTA_BATCH):
                records = [(e.key_hash, e.record) for e in batch if e.record is not None]
                if remove:
                    _remove_records(full.id, records)
                    summary.removed += _remove(full.id, [e.key_hash for e in batch], only_unrecorded=bool(records))
                else:
                    summary.entries += _add(full.id, [(e.key_hash, e.flag) for e in batch])
                    _add_records(full.id, records)
        row.status, row.finished_at = APPLIED, utcnow()
        # Entries, not lines (registers/status.py counts a register from these).
        row.accepted, row.rejected, row.removed = summary.entries, summary.rejected, summary.removed
        db.session.commit()
    except BaseException as exc:
        db.session.rollback()
        if summary.list_id == 0 or not isinstance(exc, Exception):
            raise  # refused before it started, or interrupted: nothing to record
        # Nothing of the delta stayed; its record says it failed.
        failed = RegisterList(
            register=register,
            kind=DELTA,
            list_date=summary.list_date,
            status=FAILED,
            finished_at=utcnow(),
            accepted=summary.accepted,
            rejected=summary.rejected,
            imported_by=imported_by,
        )
        db.session.add(failed)
        db.session.commit()
        summary.list_id = failed.id
        summary.status, summary.removed, summary.entries = FAILED, 0, 0
        raise ImportFailed(f"The delta failed ({type(exc).__name__}); nothing of it was applied.", summary) from exc
    screening.forget_current_lists()
    summary.status = APPLIED


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _add(list_id: int, entries: list[tuple[bytes, str | None]]) -> int:
    """Add the entries not listed yet (a line repeating one, in the batch or
    the list, is not another); how many were new."""
    wanted: dict[bytes, str | None] = {}
    for key_hash, flag in entries:
        wanted.setdefault(key_hash, flag)
    chosen, table = backend(), RegisterEntry.__table__
    for size, params in chosen.key_batches(list(wanted)):
        statement = sa.select(table.c.key_hash).where(table.c.list_id == list_id, chosen.matching(table.c.key_hash, size))
        for (listed,) in db.session.execute(statement, params):
            wanted.pop(listed, None)
    if wanted:
        db.session.execute(chosen.insert(table), [{"list_id": list_id, "key_hash": h, "flag": f} for h, f in wanted.items()])
    return len(wanted)


def _remove(list_id: int, hashes: list[bytes], *, only_unrecorded: bool) -> int:
    """Take the entries away; how many were listed. `only_unrecorded` (MPS):
    only those no record keeps listed any more (another resident of the address)."""
    removed = 0
    for size, params in backend().key_batches(hashes):
        statement = sa.delete(RegisterEntry).where(
            RegisterEntry.list_id == list_id, backend().matching(RegisterEntry.__table__.c.key_hash, size)
        )
        if only_unrecorded:
            statement = statement.where(
                ~sa.select(MailRecord.key_hash)
                .where(MailRecord.list_id == RegisterEntry.list_id, MailRecord.key_hash == RegisterEntry.key_hash)
                .exists()
            )
        result = db.session.execute(statement, params, execution_options={"synchronize_session": False})
        removed += cast("CursorResult[Any]", result).rowcount
    return removed


def _add_records(list_id: int, records: list[tuple[bytes, bytes | None]]) -> None:
    """MPS: the records that keep their addresses listed (a repeat is not another)."""
    unique = {record: key_hash for key_hash, record in records}
    if unique:
        statement = backend().insert(MailRecord.__table__).on_conflict_do_nothing()
        db.session.execute(statement, [{"list_id": list_id, "key_hash": k, "record_hash": r} for r, k in unique.items()])


def _remove_records(list_id: int, records: list[tuple[bytes, bytes | None]]) -> None:
    if records:
        table = MailRecord.__table__
        statement = sa.delete(table).where(
            table.c.list_id == list_id, table.c.key_hash == sa.bindparam("k"), table.c.record_hash == sa.bindparam("r")
        )
        db.session.execute(statement, [{"k": key_hash, "r": record} for key_hash, record in records])
