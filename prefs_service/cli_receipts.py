"""`prefs ledger verify-receipt FILE`: check consent receipts offline.

No database and no settings: only the file (and, if given, the log's published
public keys). The algorithm is ledger/receipt_proof.py's and the README's."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .ledger import receipt_proof


def _trusted(keys: tuple[str, ...], keys_file: Any) -> set[str]:
    """Keys given with --key, and those listed in a saved /v1/ledger/public-keys answer."""
    trusted = set(keys)
    if keys_file is not None:
        try:
            listed = json.load(keys_file)
            entries = listed.get("keys", listed) if isinstance(listed, dict) else listed
            trusted |= {str(entry["public_key"]) for entry in entries}
        except (ValueError, TypeError, KeyError, AttributeError):
            raise click.ClickException(f"{keys_file.name}: not a list of public keys as /v1/ledger/public-keys gives them") from None
    return trusted


@click.command("verify-receipt")
@click.argument("file", type=click.File("rb"))
@click.option("--key", "keys", multiple=True, metavar="BASE64", help="A public key of the log to trust (repeat for several).")
@click.option("--keys-file", type=click.File("rb"), help="The log's public keys, as saved from GET /v1/ledger/public-keys.")
def verify_receipt(file, keys, keys_file):
    """Check a consent receipt (or a JSON array of them, as the person's download holds) offline:
    its event's leaf, its inclusion proof and its checkpoint's signature. Exit 0 if every one holds, 1 if not."""
    try:
        document = json.load(file)
    except ValueError as exc:
        click.echo(f"{file.name}: not JSON ({exc})", err=True)
        sys.exit(1)
    documents = document if isinstance(document, list) else [document]
    trusted = _trusted(keys, keys_file)
    failed = 0
    for position, receipt in enumerate(documents, 1):
        where = f"{file.name}" + (f" #{position}" if isinstance(document, list) else "")
        try:
            if not isinstance(receipt, dict):
                raise receipt_proof.ReceiptInvalid("not a receipt (a JSON object)")
            proved = receipt_proof.verify(receipt, trusted_keys=trusted)
        except receipt_proof.ReceiptInvalid as exc:
            failed += 1
            click.echo(f"{where}: NOT VALID: {exc}", err=True)
            continue
        click.echo(
            f"{where}: valid: event {proved['event_id']} is leaf {proved['leaf_index']} of the log's tree of "
            f"{proved['tree_size']}, signed by key {proved['key_id']} at {proved['checkpoint_time']}"
        )
    if not trusted:
        click.echo("Note: no --key given, so the receipt's own key was used; compare it with the log's published keys.", err=True)
    if failed or not documents:
        sys.exit(1)
