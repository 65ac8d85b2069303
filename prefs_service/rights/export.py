"""The access export: one ZIP with data.json (everything, machine-readable), one
CSV per section, and a README explaining every field.

Rows stream from the database into the archive, so memory stays flat however
long the person's history is.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from flask import current_app

from .. import consent, links, outbox
from ..clock import utcnow
from ..consent.models import ConsentEvent
from ..extensions import db
from ..ledger import receipts
from ..notices.models import Notice
from ..orders.models import Order
from ..outbox import Job
from ..partners.models import Disclosure, Partner
from ..private_files import create_private_file
from ..subjects.models import Identifier, Subject
from .models import RightsRequest

FORMAT = "prefs_service access export, version 1"
STREAM_CHUNK = 2000
PARTIAL = ".part"  # REF.zip.part<random>: an export being written
# A partial file nobody wrote to for this long, and whose job holds no lease, is a dead attempt's.
LEFTOVER_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    fields: tuple[tuple[str, str], ...]  # (field, what it means)
    rows: Callable[[RightsRequest], Iterator[dict[str, Any]]]


def _stream(stmt: sa.Select[*tuple[Any, ...]], names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for row in db.session.execute(stmt.execution_options(yield_per=STREAM_CHUNK)):
        # Every row, not every chunk: keep_alive renews by the clock (a third of
        # the lease), so however slow a chunk, the lease outlives the work.
        outbox.keep_alive()
        yield dict(zip(names, row, strict=True))


def _subject_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return
    subject = db.session.get_one(Subject, request.subject_id)
    yield {
        "id": subject.id,
        "name": subject.name,
        "external_ref": subject.external_ref,
        "created_at": subject.created_at,
        "erased_at": subject.erased_at,
    }


def _identifier_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    names = ("kind", "value", "created_at")
    stmt = sa.select(Identifier.kind, Identifier.value, Identifier.created_at).where(Identifier.subject_id == request.subject_id)
    return _stream(stmt.order_by(Identifier.kind), names)


def _current_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    subject = db.session.get_one(Subject, request.subject_id)
    return (
        {k: row[k] for k in ("channel", "purpose", "status", "occurred_at", "source", "allowed", "reason")}
        for row in consent.current(subject=subject)
    )


HISTORY_FIELDS = (
    ("id", "Number of the entry in our consent ledger."),
    ("channel", "email, phone, fax, mail (post) or partner (sharing with partners)."),
    ("purpose", "What the consent is for, e.g. newsletter or marketing."),
    ("status", "granted or withdrawn."),
    ("source", "How it reached us: api, import, signup, one_click, unsubscribe_page, preference_center, gpc, staff, …"),
    ("occurred_at", "When you made the choice (UTC)."),
    ("recorded_at", "When we recorded it (UTC)."),
    ("policy_version", "The privacy policy version in force at the time."),
    ("evidence_ip", "Your network address, shortened (the last part removed)."),
    ("evidence_user_agent", "The browser or program that sent it."),
    ("evidence_note", "A note from whoever recorded it."),
)


def _history_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    names = tuple(name for name, _ in HISTORY_FIELDS)
    stmt = (
        sa.select(*(getattr(ConsentEvent, name) for name in names))
        .where(ConsentEvent.subject_id == request.subject_id)
        .order_by(ConsentEvent.id)
    )
    return _stream(stmt, names)


def _notice_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    names = ("kind", "recipient", "sender", "status", "created_at", "sent_at")
    stmt = sa.select(*(getattr(Notice, name) for name in names)).where(Notice.subject_id == request.subject_id)
    return _stream(stmt.order_by(Notice.id), names)


def _request_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    names = ("reference", "type", "status", "created_at", "verified_at", "due_at", "finished_at")
    mine = RightsRequest.email_hash == request.email_hash
    if request.subject_id is not None:
        mine = sa.or_(mine, RightsRequest.subject_id == request.subject_id)
    stmt = sa.select(*(getattr(RightsRequest, name) for name in names)).where(mine)
    return _stream(stmt.order_by(RightsRequest.created_at), names)


def _disclosure_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    names = ("partner_code", "partner_name", "data_categories", "purpose", "occurred_at")
    stmt = (
        sa.select(Partner.code, Partner.name, Disclosure.data_categories, Disclosure.purpose, Disclosure.occurred_at)
        .join(Partner, Partner.id == Disclosure.partner_id)
        .where(Disclosure.subject_id == request.subject_id)
    )
    return _stream(stmt.order_by(Disclosure.occurred_at), names)


ORDER_FIELDS = (
    ("reference", "Our order reference."), ("status", "pending, payment_failed, paid, commissioning, delivered or cancelled."),
    ("plan", "What you bought."), ("amount", "The amount, in the smallest unit of the currency (pence, cents)."),
    ("currency", "The currency."), ("partner_code", "The partner or reseller who referred you, if any."),
    ("created_at", "When the order started."), ("paid_at", "When it was paid."), ("system_name", "Your system's name."),
    ("system_url", "Your system's address."), ("billing_name", "The name on the order (kept only with your permission)."),
    ("billing_address", "The billing address (kept only with your permission)."),
)  # fmt: skip


def _order_rows(request: RightsRequest) -> Iterator[dict[str, Any]]:
    if request.subject_id is None:
        return iter(())
    names = tuple(name for name, _ in ORDER_FIELDS)
    stmt = sa.select(*(getattr(Order, name) for name in names)).where(Order.subject_id == request.subject_id)
    return _stream(stmt.order_by(Order.id), names)


SECTIONS: list[Section] = [
    Section("subject", "You, as we hold you", (
        ("id", "Our reference for you."), ("name", "Your name."), ("external_ref", "Your reference in our customer system."),
        ("created_at", "When we first recorded you (UTC)."), ("erased_at", "When we erased your data, if we did."),
    ), _subject_rows),
    Section("identifiers", "How we can reach you", (
        ("kind", "email, phone, fax or postal_address."), ("value", "The address or number."), ("created_at", "When we recorded it."),
    ), _identifier_rows),
    Section("consent", "Your choices now", (
        ("channel", "email, phone, fax, mail or partner."), ("purpose", "What it is for."),
        ("status", "granted, withdrawn, or empty when you never told us."), ("occurred_at", "When you made the choice."),
        ("source", "How it reached us."), ("allowed", "Whether we may contact you this way now: yes or no."),
        ("reason", "Why: granted, withdrawn, no_consent, suppressed or transactional."),
    ), _current_rows),
    Section("consent_history", "Every consent choice we recorded, with its evidence", HISTORY_FIELDS, _history_rows),
    Section("notices", "Messages we sent you", (
        ("kind", "What the message was."), ("recipient", "Where it went."), ("sender", "transactional or marketing."),
        ("status", "pending, sent or failed."), ("created_at", "When we wrote it."), ("sent_at", "When it left us."),
    ), _notice_rows),
    Section("orders", "Your purchases", ORDER_FIELDS, _order_rows),
    Section("requests", "Your requests about your data", (
        ("reference", "The request's reference."), ("type", "access, erasure or correction."), ("status", "Where it stands."),
        ("created_at", "When we received it."), ("verified_at", "When you confirmed it."), ("due_at", "When we must answer by."),
        ("finished_at", "When it ended."),
    ), _request_rows),
    Section("disclosures", "Partners we shared your data with", (
        ("partner_code", "The partner's code."), ("partner_name", "The partner."), ("data_categories", "What we shared."),
        ("purpose", "share_for_fulfilment (to complete your order) or share_for_marketing (with your consent)."),
        ("occurred_at", "When."),
    ), _disclosure_rows),
]  # fmt: skip


def _readme(request: RightsRequest, generated_at: datetime) -> str:
    lines = [
        f"Your data, as held by us on {generated_at:%-d %B %Y} (request {request.reference}).",
        "",
        "data.json holds everything below in one machine-readable file; each section is also a CSV file.",
        "receipts/iso27560.json and receipts/kantara.json hold a standard consent receipt for every entry of",
        "consent_history, with the proof that it is in our tamper-evident log (see receipts/README.txt).",
        "Times are in UTC (ISO 8601). An empty value means we hold nothing there.",
        "",
    ]
    if request.subject_id is None:
        lines += ["We hold no personal data about this address beyond your request itself.", ""]
    for section in SECTIONS:
        lines += [f"{section.name}.csv: {section.title}", *[f"  {field}: {meaning}" for field, meaning in section.fields], ""]
    return "\n".join(lines)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # for a person reading the file; data.json keeps true and false
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _partial_files(folder: Path, reference: str) -> list[Path]:
    return list(folder.glob(glob.escape(f"{reference}.zip{PARTIAL}") + "*"))


def remove_request_files(folder: Path, reference: str) -> int:
    """Delete the export of request `reference` and every partial one (of a dead
    attempt, or one being written); returns how many files were removed."""
    removed = 0
    for path in (folder / f"{reference}.zip", *_partial_files(folder, reference)):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def references_being_written(*, job_kind: str, now: datetime) -> set[str]:
    """Requests whose export job attempt still holds its lease: a live worker
    may be writing their partial file (it renews the lease as it goes)."""
    payloads = db.session.scalars(
        sa.select(Job.payload).where(Job.kind == job_kind, Job.status == outbox.RUNNING, Job.lease_expires_at >= now)
    )
    request_ids = {payload.get("request_id") for payload in payloads}
    if not request_ids:
        return set()
    return set(db.session.scalars(sa.select(RightsRequest.reference).where(RightsRequest.id.in_(request_ids))))


def remove_leftover_partials(folder: Path, *, live: set[str], now: datetime) -> int:
    """Delete partial files no live attempt is writing and nobody wrote to for
    LEFTOVER_AFTER: a killed worker's, holding a person's data. Returns how many."""
    removed = 0
    for path in folder.glob(f"*.zip{PARTIAL}*"):
        if path.name.partition(f".zip{PARTIAL}")[0] in live:
            continue
        try:
            if path.stat().st_mtime >= (now - LEFTOVER_AFTER).timestamp():
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # its attempt just finished or removed it
        removed += 1
    return removed


def write_export(request: RightsRequest, path: Path) -> None:
    """Write the archive beside `path` (0600 from the start) and move it into
    place when complete. Partial files of earlier, dead attempts of the same
    export are removed first; this attempt's own is removed if it fails."""
    for leftover in _partial_files(path.parent, request.reference):
        leftover.unlink(missing_ok=True)
    partial = path.with_name(f"{path.name}{PARTIAL}{uuid.uuid4().hex}")
    try:
        _write_archive(request, partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _entry(archive: zipfile.ZipFile, name: str, generated_at: datetime) -> zipfile.ZipInfo:
    """A member dated with the export's time (UTC), compressed as the archive is;
    opened by name, zipfile would date it 1 January 1980."""
    info = zipfile.ZipInfo(name, date_time=generated_at.timetuple()[:6])
    info.compress_type = archive.compression
    # What ZipFile.open(name) sets; typeshed omits it (public as compress_level from Python 3.13).
    info._compresslevel = archive.compresslevel  # type: ignore[attr-defined]
    info.external_attr = 0o600 << 16  # the file's mode once unpacked: the person's data, theirs alone
    return info


def _write_archive(request: RightsRequest, partial: Path) -> None:
    generated_at = utcnow()
    with (
        os.fdopen(create_private_file(partial), "wb") as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
    ):
        with archive.open(_entry(archive, "data.json", generated_at), "w", force_zip64=True) as out:
            out.write(orjson.dumps({"format": FORMAT, "reference": request.reference, "generated_at": generated_at})[:-1])
            for section in SECTIONS:
                out.write(b',"' + section.name.encode() + b'":[')
                for index, row in enumerate(section.rows(request)):
                    out.write((b"," if index else b"") + orjson.dumps(row, option=orjson.OPT_NAIVE_UTC))
                out.write(b"]")
            out.write(b"}")
        for section in SECTIONS:
            names = [field for field, _ in section.fields]
            with archive.open(_entry(archive, f"{section.name}.csv", generated_at), "w", force_zip64=True) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(names)
                for row in section.rows(request):
                    writer.writerow([_csv_value(row.get(name)) for name in names])
                text.flush()
                text.detach()
        archive.writestr(_entry(archive, "README.txt", generated_at), _readme(request, generated_at))
        _write_receipts(archive, request, generated_at)


def _write_receipts(archive: zipfile.ZipFile, request: RightsRequest, generated_at: datetime) -> None:
    """Every consent receipt of the person, in both standard formats."""
    withdraw = links.preferences_url(request.subject_id) if request.subject_id else receipts.public_withdraw_url()
    for fmt in receipts.FORMATS:
        with archive.open(_entry(archive, f"receipts/{fmt}.json", generated_at), "w", force_zip64=True) as out:
            out.write(b"[")
            documents = (
                receipts.receipts_of(subject_id=request.subject_id, fmt=fmt, withdraw_url=withdraw) if request.subject_id else iter(())
            )
            for index, document in enumerate(documents):
                outbox.keep_alive()
                out.write((b",\n" if index else b"\n") + orjson.dumps(document))
            out.write(b"\n]\n")
    readme = receipts.ARCHIVE_README.format(org=current_app.config["PREFS"].org_name)
    archive.writestr(_entry(archive, "receipts/README.txt", generated_at), readme)
