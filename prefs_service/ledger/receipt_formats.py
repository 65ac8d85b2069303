"""The two standard shapes of a consent receipt, built from one set of facts.

- ISO/IEC TS 27560:2023 consent record in the W3C DPV JSON(-LD) profile
  (https://w3id.org/dpv/guides/consent-27560): a `dpv:ConsentRecord`.
- Kantara Initiative Consent Receipt Specification v1.1 (`KI-CR-v1.1.0`).

Both carry what the standards name, plus, where a standard has no field for
it, a few extensions of ours under stated names (the schemas in schemas/ list
them): the state (Kantara has no withdrawal), how to withdraw, the legal basis,
and the proof block (`ledgerProof`) that receipt_proof.verify checks.
Pure functions: no database, no request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KANTARA_VERSION = "KI-CR-v1.1.0"
DPV_RECORD = "https://w3id.org/dpv/schema/dpv-27560#record"
RECEIPT_NAMESPACE = uuid.UUID("6f1c1d2e-3b7a-5e0c-9a55-0d6c6b1f2a10")  # uuid5 namespace of our receipt ids
ISO27560 = "iso27560"
KANTARA = "kantara"
FORMATS = (ISO27560, KANTARA)

# What personal data a purpose on each channel uses: (DPV pd: concept, Kantara piiCategory).
PERSONAL_DATA = {
    "email": ("pd:EmailAddress", "Email address"),
    "phone": ("pd:TelephoneNumber", "Telephone number"),
    "fax": ("pd:TelephoneNumber", "Fax number"),
    "mail": ("pd:PhysicalAddress", "Postal address"),
    "partner": ("pd:Contact", "Contact details"),
}
# How the event reached us (its source), in words.
SOURCES = {
    "api": "Recorded through our API by one of our systems",
    "import": "Imported from an earlier system",
    "signup": "Sign-up form",
    "web_form": "Web form",
    "checkout": "Checkout",
    "crm": "Recorded in our customer system",
    "phone_call": "Phone call",
    "paper_form": "Paper form",
    "in_person": "In person",
    "email_reply": "Reply by email",
    "one_click": "One-click unsubscribe (RFC 8058)",
    "unsubscribe_page": "Unsubscribe page",
    "preference_center": "Preference center",
    "gpc": "Global Privacy Control signal from the browser",
    "staff": "Recorded by our staff",
}
JURISDICTION_LAW = {"GB": "eu-gdpr:GDPR", "EU": "eu-gdpr:GDPR"}


@dataclass(frozen=True)
class Controller:
    name: str
    email: str
    url: str
    postal_address: str
    phone: str


@dataclass(frozen=True)
class ReceiptFacts:
    event: dict[str, Any]  # the disclosed event fields (receipt_proof.EVENT_FIELDS), times as ISO strings
    purpose_label: str
    marketing: bool
    jurisdiction: str
    policy_url: str
    controller: Controller
    withdraw_url: str
    proof: dict[str, Any]  # receipt_proof's block: {"status": "pending"} or the inclusion proof and checkpoint
    language: str = "en"

    @property
    def receipt_id(self) -> str:
        """The same receipt id however often the receipt is fetched."""
        return str(uuid.uuid5(RECEIPT_NAMESPACE, f"{self.controller.url}/consent-event/{self.event['id']}"))

    @property
    def given(self) -> bool:
        return bool(self.event["status"] == "granted")

    @property
    def method(self) -> str:
        source = str(self.event["source"])
        return SOURCES.get(source, source)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp())


def kantara(facts: ReceiptFacts) -> dict[str, Any]:
    event, controller = facts.event, facts.controller
    _, pii_category = PERSONAL_DATA.get(event["channel"], ("pd:Contact", "Contact details"))
    shared = event["channel"] == "partner"
    purpose: dict[str, Any] = {
        "purpose": facts.purpose_label,
        "purposeCategory": ["Marketing" if facts.marketing else "Core Function"],
        "consentType": "EXPLICIT",
        "piiCategory": [pii_category],
        "primaryPurpose": True,
        "termination": f"Until withdrawn; withdraw at any time at {facts.withdraw_url}",
        "thirdPartyDisclosure": shared,
        # Extensions: our identifiers of the purpose, which the proof block's event names.
        "purposeId": event["purpose"],
        "channel": event["channel"],
    }
    if shared:
        purpose["thirdPartyName"] = "Our partners, as listed in the privacy policy"
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": facts.jurisdiction,
        "consentTimestamp": _epoch(event["occurred_at"]),
        "collectionMethod": facts.method,
        "consentReceiptID": facts.receipt_id,
        "publicKey": (facts.proof.get("publicKey") or {}).get("ed25519", ""),
        "language": facts.language,
        "piiPrincipalId": str(event["subject_id"]),
        "piiControllers": [
            {
                "piiController": controller.name,
                "onBehalf": False,
                "contact": controller.name,
                "address": {"streetAddress": controller.postal_address},
                "email": controller.email,
                "phone": controller.phone,
                "piiControllerUrl": controller.url,
            }
        ],
        "policyUrl": facts.policy_url,
        "services": [{"service": f"{controller.name}: {event['channel']} messages", "purposes": [purpose]}],
        "sensitive": False,
        "spiCat": [],
        # Extensions (not in KI-CR-v1.1.0, which records only consent given).
        "consentStatus": "given" if facts.given else "withdrawn",
        "legalBasis": "consent",
        "policyVersion": event["policy_version"],
        "withdrawal": {"url": facts.withdraw_url, "email": controller.email},
        "ledgerProof": facts.proof,
    }


CONTEXT = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
    "loc": "https://w3id.org/dpv/loc#",
    "dct": "http://purl.org/dc/terms/",
    "schema": "https://schema.org/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def iso27560(facts: ReceiptFacts) -> dict[str, Any]:
    event, controller = facts.event, facts.controller
    pd_concept, _ = PERSONAL_DATA.get(event["channel"], ("pd:Contact", "Contact details"))
    subject = {"@id": f"urn:uuid:{event['subject_id']}", "@type": "dpv:DataSubject"}
    law = JURISDICTION_LAW.get(facts.jurisdiction)
    record: dict[str, Any] = {
        "@context": {**CONTEXT, "prefs": f"{controller.url}/ns/ledger#"},
        "@id": f"urn:uuid:{facts.receipt_id}",
        "@type": "dpv:ConsentRecord",
        "dct:identifier": facts.receipt_id,
        "dct:conformsTo": DPV_RECORD,
        "dct:created": event["recorded_at"],
        "dct:language": facts.language,
        "dpv:hasDataSubject": subject,
        "dpv:hasDataController": {
            "@id": controller.url,
            "@type": "dpv:DataController",
            "schema:name": controller.name,
            "dpv:hasContact": {
                "schema:email": controller.email,
                "schema:telephone": controller.phone,
                "schema:address": controller.postal_address,
            },
        },
        "dpv:hasJurisdiction": f"loc:{facts.jurisdiction}",
        "dpv:hasNotice": {"@id": facts.policy_url, "@type": "dpv:PrivacyNotice", "dct:hasVersion": event["policy_version"]},
        "dpv:hasProcess": {
            "@type": "dpv:Process",
            "dpv:hasPurpose": {
                "@type": "dpv:Marketing" if facts.marketing else "dpv:ServiceProvision",
                "dct:identifier": event["purpose"],
                "dct:description": facts.purpose_label,
            },
            "dpv:hasPersonalData": pd_concept,
            "dpv:hasProcessing": "dpv:Use",
            "dpv:hasLegalBasis": "eu-gdpr:A6-1-a" if law else "dpv:Consent",
            "prefs:channel": event["channel"],
        },
        "dpv:hasConsentStatus": {
            "@type": "dpv:ConsentGiven" if facts.given else "dpv:ConsentWithdrawn",
            "dpv:isIndicatedAtTime": event["occurred_at"],
            "dpv:isIndicatedBy": subject["@id"],
            "dpv:hasIndicationMethod": facts.method,
        },
        "dpv:hasRight": {
            "@id": "eu-gdpr:A7-3" if law else "dpv:RightToWithdrawConsent",
            "dpv:isExercisedAt": {"@type": "dpv:RightExerciseNotice", "schema:url": facts.withdraw_url},
        },
        "prefs:ledgerProof": facts.proof,
    }
    if law:
        record["dpv:hasApplicableLaw"] = law
    return record


BUILDERS = {ISO27560: iso27560, KANTARA: kantara}
