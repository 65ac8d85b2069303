from __future__ import annotations

import orjson
from flask import current_app
from flask.views import MethodView

from .. import consent, links
from ..db.scopes import reads
from ..subjects import refs
from . import schemas
from .auth import require
from .blueprint import Blueprint

blp = Blueprint("links", __name__, url_prefix="/v1", description="Signed links for mailers.")


@blp.route("/unsubscribe-links")
class UnsubscribeLinks(MethodView):
    @reads  # signing needs no write: mint for a whole send in parallel
    @require("consent:write")
    @blp.arguments(schemas.UnsubscribeLinkIn())
    @blp.response(201, schemas.UnsubscribeLinkOut)
    @blp.problems(404)
    def post(self, data):
        """Mint the unsubscribe and preferences links for one recipient of a mail.

        Paste `headers` into the message (RFC 8058 one-click) and `url` into its footer.
        The person must be known (404 otherwise): marketing goes only to people whose consent is on record."""
        consent.require_channel_purpose(data["channel"], data["purpose"])
        subject_id = refs.live_id(refs.SubjectRef.one_of(data, keys=(refs.SUBJECT_ID, "email")))
        url = links.unsubscribe_url(subject_id, data["channel"], data["purpose"])
        body = {
            "subject_id": subject_id,
            "url": url,
            "preferences_url": links.preferences_url(subject_id),
            "headers": links.one_click_headers(url),
        }
        # Serialised directly (same shape as UnsubscribeLinkOut): called once per recipient of a send.
        return current_app.response_class(orjson.dumps(body), status=201, mimetype="application/json")
