"""Authorised agents: a person or business making a rights request on the
consumer's behalf (CCPA §7063), with a signed permission document.

The consumer still confirms the request through the link mailed to them
(service.confirm), unless staff record that the agent holds a power of
attorney (record_power_of_attorney), which lets it proceed without them.

Mail: the consumer is asked to confirm (and, being whose data it is, gets the
download link and the erasure confirmation); the agent is told the request's
status (received, waiting for the consumer, rejected, extended, completed),
never the data itself.

The permission is kept as a private file (0600 in a 0700 folder) under the
var dir, named by the request's reference, until the request's data is erased.
It is written with the request's transaction (db/files.py): a request that
does not commit leaves no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Mapped, mapped_column

from .. import audit, channels
from ..clock import utcnow
from ..db import files
from ..db.types import Base
from ..errors import Conflict, Invalid
from ..extensions import db
from ..notices import service as notices
from ..private_files import private_folder

MAX_PERMISSION_BYTES = 5 * 1024 * 1024
# What a permission may be, known by its first bytes (never by the name or type a client claims).
SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
KINDS_IN_WORDS = "a PDF, PNG or JPEG file"
# How the agent hears of each step (service.tell_requester's kinds); other mail is the consumer's alone.
AGENT_STATUS = {
    "request_received": "We received it. The person it is for must confirm it through a link we mailed them, "
    "unless you hold a power of attorney, which we record once we have checked it.",
    "request_rejected": "We rejected it.",
    "request_extended": "We extended its deadline.",
    "correction_done": "We completed it.",
    "export_ready": "We completed it: the person it is for has a link to download their data.",
    "erasure_done": "We completed it.",
}


class RequestAgent(Base):
    """Who made a request for someone else, and their signed permission."""

    __tablename__ = "request_agents"

    request_id: Mapped[int] = mapped_column(sa.ForeignKey("rights_requests.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    organisation: Mapped[str | None] = mapped_column(sa.String(255))
    registration: Mapped[str | None] = mapped_column(sa.String(100))
    # The file under permissions_dir(); None once erased with the request's data.
    permission_file: Mapped[str | None] = mapped_column(sa.String(200))
    permission_type: Mapped[str] = mapped_column(sa.String(40))
    permission_bytes: Mapped[int]
    power_of_attorney_at: Mapped[datetime | None]
    power_of_attorney_by: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def permission_held(self) -> bool:
        return self.permission_file is not None


@dataclass(frozen=True)
class AgentInput:
    name: str
    email: str
    permission: bytes
    organisation: str | None = None
    registration: str | None = None


def permissions_dir() -> Path:
    return private_folder(current_app.config["PREFS"].var_dir / "agent-permissions")


def media_type(document: bytes) -> str | None:
    return next((kind for kind, starts in SIGNATURES.items() if document.startswith(starts)), None)


def validate(agent: AgentInput) -> tuple[AgentInput, str]:
    """The agent's details cleaned, and the permission's media type; Invalid names what to fix."""
    errors: dict[str, list[str]] = {}
    name = (agent.name or "").strip()
    if not 1 <= len(name) <= 255:
        errors["agent.name"] = ["give the agent's name (1 to 255 characters)"]
    try:
        email = channels.normalize("email", agent.email or "")
    except channels.InvalidIdentifier as exc:
        errors["agent.email"] = [str(exc)]
        email = ""
    organisation = (agent.organisation or "").strip() or None
    registration = (agent.registration or "").strip() or None
    if organisation and len(organisation) > 255:
        errors["agent.organisation"] = ["at most 255 characters"]
    if registration and len(registration) > 100:
        errors["agent.registration"] = ["at most 100 characters"]
    kind = media_type(agent.permission)
    if not agent.permission:
        errors["agent.permission"] = [f"attach the signed permission: {KINDS_IN_WORDS}"]
    elif len(agent.permission) > MAX_PERMISSION_BYTES:
        errors["agent.permission"] = [f"the file is too large: at most {MAX_PERMISSION_BYTES // (1024 * 1024)} MB"]
    elif kind is None:
        errors["agent.permission"] = [f"the file must be {KINDS_IN_WORDS}"]
    if errors:
        raise Invalid("The agent's details are not complete.", errors=errors)
    assert kind is not None
    return AgentInput(name, email, agent.permission, organisation, registration), kind


def attach(*, request_id: int, reference: str, agent: AgentInput, kind: str) -> RequestAgent:
    """Store a validated agent and their permission with request `request_id`."""
    name = f"{reference}.{EXTENSIONS[kind]}"
    path = permissions_dir() / name
    path.unlink(missing_ok=True)  # references are unique: only the leftover of a process killed before its commit
    files.write_private(path, agent.permission)  # removed again unless the request's transaction commits
    row = RequestAgent(
        request_id=request_id,
        name=agent.name,
        email=agent.email,
        organisation=agent.organisation,
        registration=agent.registration,
        permission_file=name,
        permission_type=kind,
        permission_bytes=len(agent.permission),
    )
    db.session.add(row)
    return row


def of(request_id: int) -> RequestAgent | None:
    return db.session.get(RequestAgent, request_id)


def permission_path(agent: RequestAgent) -> Path | None:
    if agent.permission_file is None:
        return None
    path = permissions_dir() / agent.permission_file
    return path if path.exists() else None


def record_power_of_attorney(*, agent: RequestAgent, actor: str) -> None:
    """Staff checked that the agent holds a power of attorney: the consumer need not confirm."""
    if agent.power_of_attorney_at is not None:
        raise Conflict("A power of attorney is recorded for this agent already.")
    agent.power_of_attorney_at = utcnow()
    agent.power_of_attorney_by = actor
    audit.record("request.power_of_attorney", actor=actor, target_type="rights_request", target_id=agent.request_id)


def tell_agent(*, request_id: int, reference: str, type: str, kind: str) -> None:
    """The agent hears how the request stands, once per step, however often a job reruns."""
    agent = of(request_id)
    if agent is None or agent.email is None or kind not in AGENT_STATUS:
        return
    notices.queue(
        kind="agent_status",
        recipient=agent.email,
        template="agent_status",
        context={"reference": reference, "type": type, "status": AGENT_STATUS[kind], "agent_name": agent.name},
        idempotency_key=f"agent_status:{kind}:{reference}",
    )


def erase(*, request_ids: list[int]) -> None:
    """The permission (it names the consumer) goes with the request's data; who
    the agent was stays, as the record of who asked."""
    if not request_ids:
        return
    for agent in db.session.scalars(sa.select(RequestAgent).where(RequestAgent.request_id.in_(request_ids))):
        if agent.permission_file is not None:
            (permissions_dir() / agent.permission_file).unlink(missing_ok=True)
            agent.permission_file = None
