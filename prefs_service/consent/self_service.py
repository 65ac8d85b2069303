"""What a person does themselves, through a signed link we mailed them:
unsubscribe, the preference center, a Global Privacy Control signal, asking
for a fresh link, and coming back after an erasure."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from .. import channels, links, tokens
from ..clock import utcnow
from ..errors import Conflict, Invalid
from ..extensions import db
from ..notices import service as notices
from ..subjects import jurisdictions
from ..subjects import service as subjects
from ..subjects.identifiers import identifier_hash
from ..subjects.models import Identifier, Subject, Suppression
from ..subjects.refs import ERASURE, SubjectRef, find
from . import ledger, queries
from .checks import current
from .events import SELF, Evidence, channel_purpose_errors, own_event, require_channel_purpose
from .models import ConsentEvent
from .rules import GRANTED, WITHDRAWN
from .suppressions import lift_by_own_grant

GPC_PURPOSE = ("partner", "share_for_marketing")
PREFERENCES_LINK_EVERY = timedelta(minutes=10)


def unsubscribe(*, subject_id: uuid.UUID, channel: str, purpose: str, source: str, evidence: Evidence) -> bool:
    """Withdraw at once; whether that changed anything (a repeat does not).
    NotFound if the person no longer exists."""
    require_channel_purpose(channel, purpose)
    return ledger.change_if_different(
        subject_id=subject_id, event=own_event(channel, purpose, WITHDRAWN, source, evidence), recorded_by=SELF
    )


GPC_MEANS = {
    jurisdictions.US_CA: "an opt-out of sale and sharing (CCPA; Cal. Code Regs. tit. 11, s. 7025)",
    # Art. 21(5) lets a person object by automated means using technical
    # specifications, and an objection to direct marketing is absolute (21(3)).
    "GDPR": "an objection to sharing for marketing, made by automated means (GDPR Art. 21(5))",
}


def honour_gpc(*, subject: Subject, header: str | None, evidence: Evidence) -> bool:
    """A Global Privacy Control signal (the `Sec-GPC` request header) from a
    page that knows the person. `1` withdraws sharing for marketing with
    partners (source `gpc`, the header in the evidence): for US-CA people as
    the opt-out of sale/sharing the CCPA makes of it; for everyone else as an
    objection to direct marketing by automated means (GDPR Art. 21(5)), so
    one rule holds for all. Any other value means nothing.

    Recorded once, not on every page the browser opens: again only if a grant
    from elsewhere (an import, another system) came since. A grant the person
    makes themselves on the preference page after the signal stands (the CCPA
    lets them confirm such a choice, s. 7025(c)(3)). Returns whether anything
    was recorded."""
    if header is None or header.strip() != "1":
        return False
    queries.lock_person(subject.id)
    state = queries.states_of(subject.id).get(GPC_PURPOSE)
    if queries.has_event_from(subject.id, "gpc") and (state is None or state.status == WITHDRAWN or state.source == "preference_center"):
        return False
    law = jurisdictions.of(subject)
    note = f"Sec-GPC: {header.strip()} (Global Privacy Control), taken as {GPC_MEANS.get(law, GPC_MEANS['GDPR'])}; jurisdiction {law}"
    signal = dataclasses.replace(evidence, note=note)
    ledger.record(subject_id=subject.id, event=own_event(*GPC_PURPOSE, WITHDRAWN, "gpc", signal), recorded_by=SELF)
    return True


def applicable_channels(subject: Subject) -> list[channels.Channel]:
    """Channels we could reach this person on: those whose identifier we hold, and partner sharing."""
    kinds = {i.kind for i in subject.identifiers}
    return [c for c in channels.CHANNELS.values() if c.identifier_kind is None or c.identifier_kind in kinds]


def preference_view(subject: Subject) -> list[dict[str, Any]]:
    """What the preference center shows: per applicable channel, each purpose with its answer."""
    answers = {(row["channel"], row["purpose"]): row for row in current(subject=subject)}
    view = []
    for channel in applicable_channels(subject):
        purposes = [
            {
                "name": p.name,
                "label": p.label,
                "choice": p.needs_consent,
                "granted": answers[(channel.name, p.name)]["status"] == GRANTED,
                "reason": answers[(channel.name, p.name)]["reason"],
            }
            for p in channel.purposes
        ]
        view.append(
            {
                "name": channel.name,
                "label": channel.label,
                "purposes": purposes,
                "suppressed": any(p["reason"] in ("suppressed", "erased") for p in purposes),
            }
        )
    return view


def save_preferences(
    *, subject: Subject, granted: set[tuple[str, str]], evidence: Evidence, source: str = "preference_center"
) -> list[ConsentEvent]:
    """Make every opt-in purpose of every applicable channel match `granted`
    ((channel, purpose) pairs), one ledger event per actual change."""
    unknown = {pair for pair in granted if channel_purpose_errors(*pair)}
    if unknown:
        raise Invalid("Unknown channel or purpose.", errors={"purposes": sorted(f"{c}.{p}" for c, p in unknown)})
    queries.lock_person(subject.id)
    states = queries.statuses(subject.id)
    recorded = []
    for channel in applicable_channels(subject):
        for purpose in channel.purposes:
            if not purpose.needs_consent:
                continue
            key = (channel.name, purpose.name)
            wanted = GRANTED if key in granted else WITHDRAWN
            current_status = states.get(key)
            if current_status == wanted or (current_status is None and wanted == WITHDRAWN):
                continue
            row, _ = ledger.record(subject_id=subject.id, event=own_event(*key, wanted, source, evidence), recorded_by=SELF)
            recorded.append(row)
    lift_by_own_grant(subject, {channel for channel, _ in granted})
    return recorded


def stop_all_marketing(*, subject: Subject, evidence: Evidence) -> list[ConsentEvent]:
    """Withdraw every marketing purpose not already withdrawn, on every channel,
    so no older grant arriving later can count."""
    queries.lock_person(subject.id)
    states = queries.statuses(subject.id)
    recorded = []
    for channel, purpose in channels.all_purposes():
        spec = channels.CHANNELS[channel].purpose(purpose)
        if spec is not None and spec.marketing and states.get((channel, purpose)) != WITHDRAWN:
            row, _ = ledger.record(
                subject_id=subject.id, event=own_event(channel, purpose, WITHDRAWN, "preference_center", evidence), recorded_by=SELF
            )
            recorded.append(row)
    return recorded


def request_preferences_link(*, email: str) -> None:
    """Mail a fresh preferences link if we know the address, or a link to come
    back if it belonged to someone we erased; otherwise do nothing. The caller
    answers the same either way. At most one mail per address per ten minutes,
    however often it is asked."""
    try:
        ref = SubjectRef.parse("email", email)
    except Invalid:
        return
    bucket = int(utcnow().timestamp() // PREFERENCES_LINK_EVERY.total_seconds())
    subject = find(ref)
    held = subject.identifier("email") if subject is not None else None
    if subject is None or held is None:
        _offer_return(ref.value, bucket)
        return
    notices.queue(
        kind="preferences_link",
        recipient=held.value,
        template="preferences_link",
        context={"preferences_url": links.preferences_url(subject.id), "valid_days": tokens.PURPOSES["preferences"].max_age.days},
        idempotency_key=f"preferences-link:{subject.id}:{bucket}",
        subject_id=subject.id,
    )


def _offer_return(canonical: str, bucket: int) -> None:
    """An erased address asked for its preferences: mail it a link to come
    back. The mail's address is forgotten once sent, and the link names only
    the address's keyed hash."""
    email_hash = identifier_hash("email", canonical)
    if not erased_address(email_hash):
        return
    notices.queue(
        kind="return_link",
        recipient=canonical,
        template="return_link",
        context={"return_url": links.return_url(email_hash), "valid_days": tokens.PURPOSES["return"].max_age.days},
        idempotency_key=f"return-link:{email_hash.hex()[:32]}:{bucket}",
        forget_after_send=True,
    )


def erased_address(email_hash: bytes) -> bool:
    """Whether this address belonged to someone we erased and nobody holds it now."""
    suppression = db.session.get(Suppression, email_hash)
    if suppression is None or suppression.reason != ERASURE:
        return False
    return db.session.scalar(sa.select(Identifier.id).where(Identifier.value_hash == email_hash)) is None


def come_back(*, email_hash: bytes, typed_email: str, granted: set[tuple[str, str]], evidence: Evidence) -> tuple[Subject, int]:
    """The one way back for a person we erased: through a link mailed to
    their old address, they type it again and choose what to receive. A new
    person holds the address, their grants are in the ledger with the
    evidence, and the address's erasure suppression is lifted. Invalid when
    the address is not the one the link was sent to, or nothing was chosen.
    Returns (the person, how many grants were recorded)."""
    try:
        ref: SubjectRef | None = SubjectRef.parse("email", typed_email)
    except Invalid:
        ref = None
    if ref is None or ref.hash != email_hash:
        raise Invalid("That is not the address this link was sent to.", errors={"email": ["type the address the link was sent to"]})
    email_purposes = channels.CHANNELS["email"]
    wanted = {pair for pair in granted if pair[0] == "email" and not channel_purpose_errors(*pair)}
    if not wanted or any(not p.needs_consent for _, name in wanted if (p := email_purposes.purpose(name)) is not None):
        raise Invalid("Choose what you would like to receive.", errors={"granted": ["choose at least one topic"]})
    if not erased_address(email_hash):
        raise Conflict("This link was used already: your address is with us again. Ask for a link to your preferences instead.")
    subject = subjects.come_back(email=ref.value, actor=SELF)
    for channel, purpose in sorted(wanted):
        ledger.record(subject_id=subject.id, event=own_event(channel, purpose, GRANTED, "preference_center", evidence), recorded_by=SELF)
    lift_by_own_grant(subject, {"email"})
    return subject, len(wanted)
