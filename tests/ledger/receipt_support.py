"""Shared by the receipt tests: the standards' schemas, loaded as files."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[2] / "prefs_service" / "ledger" / "schemas"


def _load(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


_PROOF = _load("proof.schema.json")
_REGISTRY = Registry().with_resources(
    [(name, Resource.from_contents(_PROOF)) for name in ("proof.schema.json", "https://prefs-service.invalid/schemas/proof.schema.json")]
)
VALIDATORS = {
    "iso27560": Draft202012Validator(_load("iso27560-dpv.schema.json"), registry=_REGISTRY, format_checker=FormatChecker()),
    "kantara": Draft202012Validator(_load("kantara-cr-1.1.schema.json"), registry=_REGISTRY, format_checker=FormatChecker()),
}


def schema_errors(fmt: str, document: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATORS[fmt].iter_errors(document)]
