"""The transparency log: signed checkpoints, public keys, inclusion and
consistency proofs (ledger/; the README's "The transparency log")."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from ..db.scopes import reads
from ..errors import NotFound
from ..ledger import checkpoints, proofs
from .auth import require
from .blueprint import Blueprint
from .fields import INT64_MAX, QueryInteger
from .schemas import Strict

blp = Blueprint("ledger", __name__, url_prefix="/v1/ledger", description="The transparency log over the consent ledger.")

B64 = {"format": "byte"}


class CheckpointOut(ma.Schema):
    origin = fields.String(metadata={"description": "Names the log and its format: `prefs-ledger/v1`."})
    tree_size = fields.Integer()
    root_hash = fields.String(metadata={**B64, "description": "The RFC 9162 root of the first `tree_size` leaves, base64."})
    timestamp = fields.Integer(metadata={"description": "When it was signed, in milliseconds since the Unix epoch."})
    key_id = fields.String(metadata={"description": "The signing key: the first 8 bytes of SHA-256 of its raw public key, in hex."})
    signature = fields.String(metadata={**B64, "description": "Ed25519 over `body`, base64."})
    body = fields.String(metadata={"description": "The signed text: origin, tree size, root hash and timestamp, one per line."})


class PublicKeyOut(ma.Schema):
    key_id = fields.String()
    algorithm = fields.String(metadata={"enum": ["Ed25519"]})
    public_key = fields.String(metadata={**B64, "description": "The raw 32-byte public key, base64."})
    first_used_at = fields.String(metadata={"format": "date-time"})
    current = fields.Boolean(metadata={"description": "Whether it signs new checkpoints; old keys stay listed after a rotation."})


class PublicKeysOut(ma.Schema):
    keys = fields.List(fields.Nested(PublicKeyOut))


class InclusionQuery(Strict):
    event_id = QueryInteger(required=True, validate=validate.Range(min=1, max=INT64_MAX))
    tree_size = QueryInteger(
        validate=validate.Range(min=1, max=INT64_MAX),
        metadata={"description": "A signed checkpoint's size; omit for the latest checkpoint."},
    )


class InclusionOut(ma.Schema):
    event_id = fields.Integer()
    leaf_index = fields.Integer()
    tree_size = fields.Integer()
    leaf_hash = fields.String(metadata={**B64, "description": "SHA-256(0x00 || leaf), base64."})
    audit_path = fields.List(fields.String(metadata=B64), metadata={"description": "RFC 9162 §2.1.3 inclusion proof, leaf upwards."})
    checkpoint = fields.Nested(CheckpointOut)


class ConsistencyQuery(Strict):
    from_ = QueryInteger(required=True, data_key="from", validate=validate.Range(min=0, max=INT64_MAX))
    to = QueryInteger(required=True, validate=validate.Range(min=0, max=INT64_MAX))

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if data["from_"] > data["to"]:
            raise ma.ValidationError("must be at most `to`", field_name="from")


class ConsistencyOut(ma.Schema):
    from_ = fields.Integer(data_key="from")
    to = fields.Integer()
    proof = fields.List(fields.String(metadata=B64), metadata={"description": "RFC 9162 §2.1.4 consistency proof."})


@blp.route("/checkpoints/latest")
class LatestCheckpoint(MethodView):
    @reads
    @require("consent:read")
    @blp.response(200, CheckpointOut)
    @blp.problems(404)
    def get(self):
        """The newest signed checkpoint: the tree's size and root, signed with Ed25519."""
        found = checkpoints.latest()
        if found is None:
            raise NotFound("The log has no checkpoint yet.")
        return found


@blp.route("/public-keys")
class PublicKeys(MethodView):
    @reads
    @require("consent:read")
    @blp.response(200, PublicKeysOut)
    def get(self):
        """Every key that has signed a checkpoint, the current one and older ones."""
        return {"keys": checkpoints.public_keys()}


@blp.route("/proofs/inclusion")
class InclusionProof(MethodView):
    @reads
    @require("consent:read")
    @blp.arguments(InclusionQuery(), location="query")
    @blp.response(200, InclusionOut)
    @blp.problems(404)
    def get(self, query):
        """An event's inclusion proof against a signed checkpoint (of `tree_size` leaves, or the latest)."""
        return proofs.inclusion_document(query["event_id"], query.get("tree_size"))


@blp.route("/proofs/consistency")
class ConsistencyProof(MethodView):
    @reads
    @require("consent:read")
    @blp.arguments(ConsistencyQuery(), location="query")
    @blp.response(200, ConsistencyOut)
    @blp.problems(404)
    def get(self, query):
        """Proof that the tree of `to` leaves extends the tree of `from` leaves (`from` at most `to`; 404 beyond the log)."""
        document = proofs.consistency_document(query["from_"], query["to"])
        return {"from_": document["from"], "to": document["to"], "proof": document["proof"]}
