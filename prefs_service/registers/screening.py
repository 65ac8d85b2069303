"""Screening checks against the national registers.

A marketing check on a channel that registers cover (phone: TPS and CTPS for
+44 numbers, DNC for +1 numbers; fax: FPS for +44 numbers; mail: MPS) asks
each register that has a current full list whether it lists the identifier
the check is about:

- named by the identifier itself, the identifier given (a postal address is
  keyed by keys.mail_hash of it);
- named by subject id, external ref or another identifier, the person's own
  identifier of the channel's kind. A person holds at most one identifier per
  kind (identifiers are unique per subject and kind), so there is no "any of
  several" to decide; their plain value is kept beside its hash, which gives
  the number's country and the address's MPS key.

One statement per register per batch probes the current list
(`key_hash IN (…)` in chunks on SQLite, one array joined by `unnest` on PostgreSQL), so a
bulk check of 10,000 numbers costs a few primary-key probes more than one of
10,000 email addresses (bench/register_checks.py).

The registers' current lists (id and date) are cached for CACHE_SECONDS per
process; the importer calls `forget_current_lists()` when it switches a list,
and other processes see the change within that time. Until then they probe
the replaced list, whose entries the importer keeps for longer than that
(loader.REPLACED_KEPT), so their answers are the old list's, never "not listed".

What the answer then is lives in rules.with_registers(): our own
withdrawals, suppressions and erasure answer as before; a stale list refuses
(or, with PREFS_REGISTER_STALE=warn, only says so); a listed identifier is
refused with the register named, unless the person granted this marketing
(PECR), or, for DNC, has an established business relationship with us: a
purchase within 18 months or an enquiry within 3.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql

from ..clock import utcnow
from ..db import fast, scopes
from ..db.backend import Backend, backend
from ..orders.models import Order, Payment
from ..subjects.models import Identifier
from . import DNC, REGISTERS, Register, covering
from .models import CURRENT, FULL, Enquiry, RegisterEntry, RegisterList

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
PURCHASE_MONTHS = 18  # DNC: a purchase, rental, lease or payment within this many months
ENQUIRY_MONTHS = 3  # DNC: an enquiry within this many months
WARN_EVERY_SECONDS = 60.0  # PREFS_REGISTER_STALE=warn logs a stale register at most this often per process
_CACHE = "prefs.registers.current_lists"
_WARNED = "prefs.registers.stale_warned"


@dataclass(frozen=True)
class CurrentList:
    """A register's current full list."""

    register: Register
    list_id: int
    list_date: date

    def age_days(self, today: date) -> int:
        return (today - self.list_date).days

    def stale(self, today: date) -> bool:
        """Older than the register's rule (a register without one never is)."""
        rule = self.register.stale_after_days
        return rule is not None and self.age_days(today) > rule

    def covers(self, canonical: str | None) -> bool:
        """Whether a check of this identifier (canonical form; None: none held) consults the register."""
        if canonical is None:
            return False
        prefix = self.register.country_prefix
        return prefix is None or canonical.startswith(prefix)


@functools.cache
def _current_lists_statement() -> sa.Select[Any]:
    lists = RegisterList.__table__
    return (
        sa.select(lists.c.register, lists.c.id, lists.c.list_date)
        .where(lists.c.kind == FULL, lists.c.status == CURRENT)
        .order_by(lists.c.list_date, lists.c.id)
    )


def current_lists() -> dict[str, CurrentList]:
    """{register name: its current full list}; a register never imported is absent.

    Cached per process and app for CACHE_SECONDS; forget_current_lists() drops it."""
    cached = current_app.extensions.get(_CACHE)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        found: dict[str, CurrentList] = cached[1]
        return found
    found = {}
    for name, list_id, list_date in fast.rows(_current_lists_statement(), {}, scope=scopes.current()):
        if name in REGISTERS:  # the newest wins, should two ever be current
            found[name] = CurrentList(REGISTERS[name], list_id, list_date)
    current_app.extensions[_CACHE] = (now + CACHE_SECONDS, found)
    return found


def forget_current_lists() -> None:
    """Drop this process's cache of current lists: call after a list becomes current or is replaced."""
    current_app.extensions.pop(_CACHE, None)


def lists_for(channel: str, *, marketing: bool) -> list[CurrentList]:
    """The imported registers a check on `channel` consults ([] for non-marketing purposes)."""
    if not marketing:
        return []
    registers = covering(channel)
    if not registers:
        return []
    lists = current_lists()
    return [lists[r.name] for r in registers if r.name in lists]


def screen_key(channel_kind: str, canonical: str) -> bytes | None:
    """The key a register lists this identifier by (None: no register can list it)."""
    if channel_kind == "postal_address":
        from .keys import mail_hash

        return mail_hash(canonical)
    from ..subjects.identifiers import identifier_hash

    return identifier_hash(channel_kind, canonical)


@dataclass(frozen=True)
class Screened:
    """What the registers say of one register key."""

    listed: str | None = None  # the first register listing it
    exempt: bool = False  # listed only on DNC, and the person has a business relationship with us
    stale: str | None = None  # the first register covering it whose list is past its rule


CLEAR = Screened()
_VERDICTS: dict[tuple[str | None, bool, str | None], Screened] = {}


def _verdict(listed: str | None, exempt: bool, stale: str | None) -> Screened:
    """One shared Screened per combination: a bulk check makes thousands."""
    key = (listed, exempt, stale)
    found = _VERDICTS.get(key)
    if found is None:
        found = _VERDICTS[key] = Screened(listed, exempt, stale)
    return found


def screen(lists: Sequence[CurrentList], canonicals: Mapping[bytes, str], holders: Mapping[bytes, uuid.UUID]) -> dict[bytes, Screened]:
    """{register key: Screened} for the keys any register says something about.

    `canonicals`: each register key (screen_key()) to screen, with the
    canonical form of its identifier (which registers cover it); `holders`:
    who holds a key, where the caller knows (only DNC's exemption asks; a
    listed key without one is looked up). A bulk check screens 10,000 keys:
    the loops stay comprehensions over plain values."""
    today = utcnow().date()
    stale = [lst for lst in lists if lst.stale(today)]
    if stale:
        _warn_stale(stale, today)
    listed_by: dict[bytes, str] = {}
    for lst in lists:
        prefix = lst.register.country_prefix
        keys = sorted([k for k, canonical in canonicals.items() if (prefix is None or canonical.startswith(prefix)) and k not in listed_by])
        if keys:
            listed_by.update(dict.fromkeys(_probe(lst.list_id, keys), lst.register.name))
    exempt: set[bytes] = set()
    if dnc_keys := [k for k, name in listed_by.items() if name == DNC.name]:
        # A key may come without its holder (a check that read only the
        # decisions read model, where a held key with no answer has no row).
        found = _holders([k for k in dnc_keys if k not in holders])
        subject_of = {k: holder for k in dnc_keys if (holder := holders.get(k) or found.get(k)) is not None}
        related = business_relationships(set(subject_of.values()))
        exempt = {k for k, subject_id in subject_of.items() if subject_id in related}
    if not stale:
        return {k: _verdict(name, k in exempt, None) for k, name in listed_by.items()}
    out: dict[bytes, Screened] = {}
    for k, canonical in canonicals.items():
        listed = listed_by.get(k)
        stale_name = next((lst.register.name for lst in stale if lst.covers(canonical)), None)
        if listed is not None or stale_name is not None:
            out[k] = _verdict(listed, k in exempt, stale_name)
    return out


@functools.cache
def _holders_statement(chosen: Backend, size: int | None) -> sa.Select[Any]:
    identifiers = Identifier.__table__
    return sa.select(identifiers.c.value_hash, identifiers.c.subject_id).where(chosen.matching(identifiers.c.value_hash, size))


def _holders(hashes: Sequence[bytes]) -> dict[bytes, uuid.UUID]:
    """{identifier hash: the person holding it} for those of `hashes` someone holds."""
    if not hashes:
        return {}
    chosen = backend()
    found: dict[bytes, uuid.UUID] = {}
    for size, bound in chosen.key_batches(sorted(set(hashes))):
        found.update(fast.rows(_holders_statement(chosen, size), bound, scope=scopes.current()))
    return found


@functools.cache
def _probe_statement(chosen: Backend, size: int | None) -> sa.Select[Any]:
    entries = RegisterEntry.__table__
    list_id = sa.bindparam("list_id", type_=entries.c.list_id.type)
    if size is None:
        # One array of every key (PostgreSQL): join its elements to the primary
        # key. `key_hash = ANY(array)` over thousands of keys plans a parallel
        # sequential scan of the whole list (bench/register_checks.py).
        keys = (
            sa.func.unnest(sa.bindparam("keys", type_=postgresql.ARRAY(entries.c.key_hash.type)))
            .table_valued("key_hash")
            .render_derived("k")
        )
        on = sa.and_(entries.c.list_id == list_id, entries.c.key_hash == keys.c.key_hash)
        return sa.select(entries.c.key_hash).select_from(keys.join(entries, on))
    return sa.select(entries.c.key_hash).where(entries.c.list_id == list_id, chosen.matching(entries.c.key_hash, size))


def _probe(list_id: int, hashes: Sequence[bytes]) -> set[bytes]:
    """Which of `hashes` (sorted: the probes then walk the index in order) the list holds: one statement per batch."""
    chosen = backend()
    found: set[bytes] = set()
    for size, bound in chosen.key_batches(hashes):
        found.update(h for (h,) in fast.rows(_probe_statement(chosen, size), {"list_id": list_id, **bound}, scope=scopes.current()))
    return found


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day where it has no such day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


@functools.cache
def _relationship_statement(chosen: Backend, size: int | None) -> sa.CompoundSelect[Any]:
    orders, payments, enquiries = Order.__table__, Payment.__table__, Enquiry.__table__
    purchase_since = sa.bindparam("purchase_since", type_=orders.c.paid_at.type)
    return sa.union(
        sa.select(orders.c.subject_id).where(chosen.matching(orders.c.subject_id, size), orders.c.paid_at >= purchase_since),
        sa.select(orders.c.subject_id)
        .join(payments, payments.c.order_id == orders.c.id)
        .where(chosen.matching(orders.c.subject_id, size), payments.c.paid_at >= purchase_since),
        sa.select(enquiries.c.subject_id).where(
            chosen.matching(enquiries.c.subject_id, size),
            enquiries.c.occurred_at >= sa.bindparam("enquiry_since", type_=enquiries.c.occurred_at.type),
        ),
    )


def business_relationships(subject_ids: Iterable[uuid.UUID], *, now: datetime | None = None) -> set[uuid.UUID]:
    """Those of `subject_ids` with an established business relationship: a
    paid order or payment within PURCHASE_MONTHS, or an enquiry within ENQUIRY_MONTHS."""
    now = now or utcnow()
    params = {"purchase_since": months_before(now, PURCHASE_MONTHS), "enquiry_since": months_before(now, ENQUIRY_MONTHS)}
    chosen = backend()
    found: set[uuid.UUID] = set()
    for size, bound in chosen.key_batches(sorted(set(subject_ids))):
        found.update(s for (s,) in fast.rows(_relationship_statement(chosen, size), {**params, **bound}, scope=scopes.current()))
    return found


def _warn_stale(stale: Sequence[CurrentList], today: date) -> None:
    if current_app.config["PREFS"].register_stale != "warn":
        return
    warned: dict[str, float] = current_app.extensions.setdefault(_WARNED, {})
    now = time.monotonic()
    for lst in stale:
        if warned.get(lst.register.name, 0.0) <= now:
            warned[lst.register.name] = now + WARN_EVERY_SECONDS
            log.warning(
                "register %s list of %s is %d days old, past its %d-day rule: checks answer as if it were fresh "
                "(PREFS_REGISTER_STALE=warn); import a newer list",
                lst.register.name,
                lst.list_date.isoformat(),
                lst.age_days(today),
                lst.register.stale_after_days,
            )


def warn_only() -> bool:
    return bool(current_app.config["PREFS"].register_stale == "warn")
