"""The consent rules, as pure functions: no database, no app.

- Which event wins: the newest `occurred_at`; on a tie a withdrawal beats a
  grant, so a late import of an old grant never undoes a later withdrawal.
- What a check decides: a suppressed identifier or an erased person is never
  contacted (erasure silences every purpose, transactional included); purposes
  that need no consent (transactional mail, sharing needed to fulfil an order)
  are allowed; marketing needs a grant (opt-in).

ledger.py applies the first rule (and queries.py states it in SQL for the
state upsert); checks.py applies the second to every single check, bulk check
and the current-state view alike. tests/consent/test_rules.py pins both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

GRANTED = "granted"
WITHDRAWN = "withdrawn"
STATUSES = (GRANTED, WITHDRAWN)

REASONS = ("granted", "withdrawn", "no_consent", "suppressed", "erased", "transactional", "invalid", "register", "register_stale")
# `erased`: the person asked us to erase their data. Whichever key names them
# (subject id, external ref, any identifier they had), every purpose answers
# this, transactional included, until they come back by their own grant.
# `register`: a national do-not-contact register lists the identifier;
# `register_stale`: a register that covers it is past its rule (with_registers()).


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str
    since: datetime | None = None
    # The national register the answer concerns (registers/), if any.
    register: str | None = None
    # The register's list is past its rule, and PREFS_REGISTER_STALE=warn let the answer stand.
    register_stale: bool = False


INVALID = CheckResult(False, "invalid")
TRANSACTIONAL = CheckResult(True, "transactional")
NO_CONSENT = CheckResult(False, "no_consent")
# The answers a national register can change; every other stands as it is.
REGISTERS_SPEAK_TO = frozenset({GRANTED, NO_CONSENT.reason})


def wins(new_occurred_at: datetime, new_status: str, old_occurred_at: datetime, old_status: str) -> bool:
    """Whether a new event decides its purpose over the one that decides it now."""
    if new_occurred_at != old_occurred_at:
        return new_occurred_at > old_occurred_at
    return new_status == WITHDRAWN and old_status == GRANTED


def decide(
    *, needs_consent: bool, status: str | None, since: datetime | None, silenced_since: datetime | None, erased: bool
) -> CheckResult:
    """The answer for one person, channel and purpose.

    `status` and `since`: the current state (None if they never chose);
    `silenced_since`: when a suppression of this channel's identifier began, or
    the person was erased (None if neither); `erased`: it was an erasure."""
    if silenced_since is not None:
        return CheckResult(False, "erased" if erased else "suppressed", silenced_since)
    if not needs_consent:
        return TRANSACTIONAL
    if status is None:
        return NO_CONSENT
    return CheckResult(status == GRANTED, status, since)


def with_registers(result: CheckResult, *, listed: str | None, exempt: bool, stale: str | None, warn_only: bool) -> CheckResult:
    """The answer once the national registers are heard (registers/screening.py).

    `listed`: the register listing the identifier; `exempt`: it is DNC and the
    person has an established business relationship with us; `stale`: a
    register covering the identifier is past its rule; `warn_only`:
    PREFS_REGISTER_STALE=warn. Our own no (a withdrawal, a suppression, an
    erasure) answers as before, whatever a register says; so do purposes that
    need no consent. A stale list refuses; a listed identifier is refused
    unless the person granted this marketing (PECR) or, for DNC, is exempt.
    The register is named in the answer either way."""
    if result.reason not in REGISTERS_SPEAK_TO:
        return result
    if stale is not None and not warn_only:
        return CheckResult(False, "register_stale", register=stale)
    flagged = stale is not None
    if listed is not None:
        if result.allowed or exempt:
            return replace(result, register=listed, register_stale=flagged)
        return CheckResult(False, "register", register=listed, register_stale=flagged)
    if flagged:
        return replace(result, register=stale, register_stale=True)
    return result
