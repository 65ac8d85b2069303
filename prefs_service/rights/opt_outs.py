"""The work of the two requests that need no identity verification, run by a
job at once (well within CCPA's 15 business days; the request records when):

- opt_out_sale_sharing withdraws partner / share_for_marketing;
- limit_sensitive withdraws profile / use_sensitive_data.

Both go through the consent ledger, so every check, feed and partner sees
them. A US-CA person who opts out of sale/sharing gets `ask_again_after`
(12 months on): callers must not ask them to opt back in before then.
"""

from __future__ import annotations

from ..clock import utcnow
from ..consent import ledger
from ..consent.events import Evidence, own_event
from ..consent.rules import WITHDRAWN
from ..errors import Erased
from ..extensions import db
from ..subjects import refs
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
    now = utcnow()
    if request.type == "opt_out_sale_sharing" and request.jurisdiction == US_CA:
        subject.ask_again_after = clocks.ask_again_after(now)
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
