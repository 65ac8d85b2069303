"""Rules across fields (which purposes a channel has, "exactly one of"), each
written once as JSON Schema for the OpenAPI document and once as the check
the input schemas run, so the two cannot drift apart."""

from __future__ import annotations

import marshmallow as ma

from .. import channels
from ..partners.service import DATA_CATEGORIES

CHANNEL_NAMES = list(channels.CHANNELS)
ALL_PURPOSES = sorted({p.name for c in channels.CHANNELS.values() for p in c.purposes})
CONSENT_PURPOSES = sorted({p.name for c in channels.CHANNELS.values() for p in c.purposes if p.needs_consent})
# Channels whose own identifier a bulk check reads by default.
CHANNELS_WITH_IDENTIFIER = [c.name for c in channels.CHANNELS.values() if c.identifier_kind is not None]

__all__ = ["DATA_CATEGORIES"]


def _purposes(channel: channels.Channel, consent_only: bool) -> list[str]:
    return [p.name for p in channel.purposes if p.needs_consent or not consent_only]


def channel_purpose(*, consent_only: bool = False, channel_default: str | None = None) -> dict:
    branches = [
        {"required": ["channel"], "properties": {"channel": {"const": c.name}, "purpose": {"enum": _purposes(c, consent_only)}}}
        for c in channels.CHANNELS.values()
        if _purposes(c, consent_only)
    ]
    if channel_default:
        default = channels.CHANNELS[channel_default]
        branches.append({"not": {"required": ["channel"]}, "properties": {"purpose": {"enum": _purposes(default, consent_only)}}})
    return {"anyOf": branches}


def check_channel_purpose(data: dict, *, consent_only: bool = False, channel_default: str | None = None) -> None:
    channel, purpose = data.get("channel", channel_default), data.get("purpose")
    if channel not in channels.CHANNELS or purpose is None:
        return  # the fields' own errors say what is missing
    spec = channels.CHANNELS[channel]
    known = spec.purpose(purpose)
    if known is None:
        raise ma.ValidationError(
            f"unknown purpose {purpose!r} for channel {channel}; valid purposes: {', '.join(spec.purpose_names)}", "purpose"
        )
    if consent_only and not known.needs_consent:
        raise ma.ValidationError(
            f"{purpose!r} needs no consent, so there is nothing to unsubscribe from; "
            f"links exist for: {', '.join(_purposes(spec, True)) or 'no purpose of this channel'}",
            "purpose",
        )


def exactly_one(keys) -> dict:
    return {"oneOf": [{"required": [key]} for key in keys]}


def check_exactly_one(data: dict, keys, field: str, message: str | None = None) -> None:
    if sum(key in data for key in keys) != 1:
        raise ma.ValidationError(message or f"Give exactly one of: {', '.join(keys)}.", field)


def identifier_type_needed() -> dict:
    """A bulk check on a channel with no identifier of its own says what the recipients are."""
    return {"anyOf": [{"properties": {"channel": {"enum": CHANNELS_WITH_IDENTIFIER}}}, {"required": ["identifier_type"]}]}


def request_shape() -> dict:
    """Who the request is from, and `changes` with corrections only."""
    return {
        "allOf": [
            {"anyOf": [{"required": ["email"]}, {"required": ["subject_id"]}]},
            {
                "anyOf": [
                    {"properties": {"type": {"const": "correction"}}, "required": ["changes"]},
                    {
                        "properties": {"type": {"enum": ["access", "erasure", "opt_out_sale_sharing", "limit_sensitive"]}},
                        "not": {"required": ["changes"]},
                    },
                ]
            },
        ]
    }
