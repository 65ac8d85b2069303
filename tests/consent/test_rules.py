"""The consent rules, pinned in a table: which event wins, and what a check decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prefs_service.consent.rules import CheckResult, decide, wins

T = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EARLIER, LATER = T - timedelta(seconds=1), T + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("new", "old", "new_wins"),
    [
        ((LATER, "granted"), (T, "withdrawn"), True),  # the newest occurred_at decides
        ((LATER, "withdrawn"), (T, "granted"), True),
        ((EARLIER, "granted"), (T, "withdrawn"), False),  # a late import of an old grant changes nothing
        ((EARLIER, "withdrawn"), (T, "granted"), False),
        ((T, "withdrawn"), (T, "granted"), True),  # a tie: the withdrawal wins
        ((T, "granted"), (T, "withdrawn"), False),
        ((T, "granted"), (T, "granted"), False),  # a tie that changes nothing keeps what decides
        ((T, "withdrawn"), (T, "withdrawn"), False),
    ],
)
def test_which_event_wins(new, old, new_wins):
    assert wins(new[0], new[1], old[0], old[1]) is new_wins


SUPPRESSED_AT = T - timedelta(days=3)


@pytest.mark.parametrize(
    ("needs_consent", "status", "since", "silenced_since", "erased", "answer"),
    [
        # Opt-in purposes (marketing): a grant is needed.
        (True, None, None, None, False, CheckResult(False, "no_consent")),
        (True, "granted", T, None, False, CheckResult(True, "granted", T)),
        (True, "withdrawn", T, None, False, CheckResult(False, "withdrawn", T)),
        # A suppression or an erasure outranks any grant.
        (True, "granted", T, SUPPRESSED_AT, False, CheckResult(False, "suppressed", SUPPRESSED_AT)),
        (True, "granted", T, SUPPRESSED_AT, True, CheckResult(False, "erased", SUPPRESSED_AT)),
        (True, None, None, SUPPRESSED_AT, True, CheckResult(False, "erased", SUPPRESSED_AT)),
        # Purposes that need no consent (transactional mail, sharing to fulfil an order).
        (False, None, None, None, False, CheckResult(True, "transactional")),
        (False, "withdrawn", T, None, False, CheckResult(True, "transactional")),
        (False, None, None, SUPPRESSED_AT, False, CheckResult(False, "suppressed", SUPPRESSED_AT)),
        (False, None, None, SUPPRESSED_AT, True, CheckResult(False, "erased", SUPPRESSED_AT)),  # erasure: transactional too
    ],
)
def test_what_a_check_decides(needs_consent, status, since, silenced_since, erased, answer):
    assert decide(needs_consent=needs_consent, status=status, since=since, silenced_since=silenced_since, erased=erased) == answer
