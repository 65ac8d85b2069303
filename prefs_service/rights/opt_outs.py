"""The work of the two requests that need no identity verification, run by a
job at once (well within CCPA's 15 business days; the request records when):

- opt_out_sale_sharing withdraws partner / share_for_marketing;
- limit_sensitive withdraws profile / use_sensitive_data.

Both go through the consent ledger, so every check, feed and partner sees
them. A US-CA person who opts out of sale/sharing gets `ask_again_after`
(12 months on): callers must not ask them to opt back in before then. So does
a US-CA person whose sharing is withdrawn by any other door (a Global Privacy
Control signal, the preference page, another system through the API): each is
the same opt-out under the CCPA (sale_sharing_withdrawn).
"""

from __future__ import annotations

import uuid

from ..clock import utcnow
from ..consent import ledger
from ..consent.events import Evidence, own_event
from ..consent.rules import WITHDRAWN
from ..errors import Erased
from ..extensions import db
from ..subjects import jurisdictions, refs
from ..subjects import service as subjects
from ..subjects.jurisdictions import US_CA
from ..subjects.models import Subject
from ..subjects.refs import SubjectRef
from . import clocks, service
from .models import COMPLETED, PROCESSING, RightsRequest

WITHDRAWS = {
    "opt_out_sale_sharing": ("partner", "share_for_marketing"),
    "limit_sensitive": ("profile", "use_sensitive_data"),
}
SOURCE = "rights_request"


def _person(request: RightsRequest) -> Subject | None:
    """Whom the request names; someone we did not know yet is added, so the
    opt-out holds when their address reaches us later. None: erased."""
    if request.subject_id is not None:
        return db.session.get(Subject, request.subject_id)
    if request.email is None:
        return None
    found = refs.find(SubjectRef("email", request.email))
    if found is None:
        try:
            found, _ = subjects.find_or_create(values={"email": request.email}, actor=f"request:{request.reference}")
        except Erased:
            return None
    request.subject_id = found.id
    return found


def sale_sharing_withdrawn(*, subject_id: uuid.UUID, channel: str, purpose: str) -> None:
    """Hook (CONSENT_WITHDRAWN): sharing for marketing withdrawn for a US-CA
    person, by whatever door, starts (or restarts) the 12-month wait."""
    if (channel, purpose) != WITHDRAWS["opt_out_sale_sharing"]:
        return
    subject = db.session.get(Subject, subject_id)
    if subject is not None and subject.erased_at is None and jurisdictions.of(subject) == US_CA:
        _wait_before_asking_again(subject)


def _wait_before_asking_again(subject: Subject) -> None:
    """12 months from this opt-out; a later opt-out moves the date on, never back."""
    wait = clocks.ask_again_after(utcnow())
    if subject.ask_again_after is None or subject.ask_again_after < wait:
        subject.ask_again_after = wait


def apply(*, request_id: int) -> None:
    request = db.session.get(RightsRequest, request_id, with_for_update=True)
    if request is None or request.status != PROCESSING or request.type not in WITHDRAWS:
        return
    subject = _person(request)
    if subject is None or subject.erased_at is not None:
        # Erased people are never contacted nor shared, by any key.
        service.transition(request, COMPLETED, actor="system", applied="nothing held: the person's data was erased")
        service.tell_requester(request, "opt_out_done", what=request.type, ask_again_after=None)
        return
    # No one confirmed who asked, so the request's jurisdiction sets only its own
    # clock, never the person's: a stranger must not move someone to another law.
    channel, purpose = WITHDRAWS[request.type]
    changed = ledger.change_if_different(
        subject_id=subject.id,
        event=own_event(channel, purpose, WITHDRAWN, SOURCE, Evidence(note=f"rights request {request.reference}")),
        recorded_by=f"request:{request.reference}",
    )
    if request.type == "opt_out_sale_sharing" and request.jurisdiction == US_CA:
        _wait_before_asking_again(subject)
    service.transition(
        request,
        COMPLETED,
        actor="system",
        applied=f"{channel}/{purpose} withdrawn" if changed else f"{channel}/{purpose} was withdrawn already",
    )
    service.tell_requester(
        request,
        "opt_out_done",
        what=request.type,
        ask_again_after=subject.ask_again_after.strftime("%-d %B %Y")
        if request.type == "opt_out_sale_sharing" and subject.ask_again_after
        else None,
    )
