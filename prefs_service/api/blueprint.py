"""The Blueprint every JSON API module uses: strict parsing of bodies and
queries, bounded path ids, and the problem responses each operation documents."""

from __future__ import annotations

import functools
import json
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser

# Ids in paths are 32-bit on PostgreSQL; a larger one could name nothing.
PATH_ID_MAX = 2**31 - 1
# The deepest body the API takes is three levels (a batch's events' evidence);
# anything far deeper is refused before code that recurses can meet it.
MAX_JSON_DEPTH = 32
# Longer integers are no id, count or amount the API takes; Python refuses
# to even read more than 4,300 digits.
MAX_INTEGER_DIGITS = 20


class OversizedInteger:
    """An integer literal too long to be any value the API takes; fields
    refuse it like any value of the wrong type, naming themselves."""

    def __repr__(self) -> str:
        return "<integer with too many digits>"


def _read_integer(literal: str):
    return int(literal) if len(literal.lstrip("-")) <= MAX_INTEGER_DIGITS else OversizedInteger()


def _nested_deeper_than(value, limit: int) -> bool:
    """Whether containers nest more than `limit` deep; a list of 10,000
    strings costs one C-level pass (its item types), not a Python loop."""
    level = [value] if type(value) in (dict, list) else []
    for _ in range(limit):
        deeper: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            kinds = set(map(type, items))
            if dict in kinds or list in kinds:
                deeper.extend(item for item in items if type(item) in (dict, list))
        if not deeper:
            return False
        level = deeper
    return True


def read_json_body(data: bytes):
    """The body as JSON, or a 400 saying why it cannot be read. Strings keep
    lone surrogates and NUL characters so that the field holding one can say so."""
    try:
        value = json.loads(data.decode("utf-8"), parse_int=_read_integer)
    except UnicodeDecodeError:
        abort(400, message="The request body is not valid UTF-8.", errors={"body": ["not valid UTF-8"]})
    except RecursionError:
        abort(400, message="The request body is nested too deeply.", errors={"body": [f"at most {MAX_JSON_DEPTH} levels of nesting"]})
    except ValueError:
        abort(400, message="The request body is not valid JSON.", errors={"body": ["Invalid JSON body."]})
    if _nested_deeper_than(value, MAX_JSON_DEPTH):
        abort(400, message="The request body is nested too deeply.", errors={"body": [f"at most {MAX_JSON_DEPTH} levels of nesting"]})
    return value


class StrictParser(FlaskParser):
    # A misspelt query parameter is an error to report, not a value to ignore.
    DEFAULT_UNKNOWN_BY_LOCATION = {  # noqa: RUF012 - webargs declares it an instance attribute
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def load_json(self, req, schema):
        # webargs reads a missing or non-JSON body as "no fields", which an
        # all-optional schema accepts: POST /v1/subjects created empty people.
        if not core.is_json(req.mimetype):
            abort(415, message="Send the body as application/json.")
        data = req.get_data(cache=True)
        if not data.strip():
            abort(422, message="The request needs a JSON body.", errors={"body": ["Missing request body."]})
        return read_json_body(data)

    def load_querystring(self, req, schema):
        # Where no field takes repeated values, a plain dict of first values
        # reads the same: werkzeug's MultiDict answers every absent key by
        # raising and catching an exception, several per consent check.
        if self._repeatable_keys(schema):
            return super().load_querystring(req, schema)
        return req.args.to_dict()

    @functools.lru_cache(maxsize=256)  # noqa: B019 - schemas live as long as the app
    def _repeatable_keys(self, schema) -> frozenset:
        return frozenset(self._makeproxy({}, schema).multiple_keys)


def refuse_out_of_range_ids(endpoint, values) -> None:
    """A path id no row can have is a field error, not a database error."""
    for name, value in (values or {}).items():
        if type(value) is int and value > PATH_ID_MAX:
            abort(422, message="The path has an invalid id.", errors={name: [f"must be at most {PATH_ID_MAX}"]})


# Documented on every operation that can answer them, as they are sent.
BODY_PROBLEMS = {400: "BAD_REQUEST", 413: "REQUEST_ENTITY_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY"}
KEY_PROBLEMS = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}
PROBLEM_RESPONSES = {
    **BODY_PROBLEMS,
    **KEY_PROBLEMS,
    404: "NOT_FOUND",
    409: "CONFLICT",
    503: "SERVICE_UNAVAILABLE",
}


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.url_value_preprocessor(refuse_out_of_range_ids)
        self._prepare_doc_cbks.append(self._prepare_problem_doc)

    def problems(self, *statuses: int):
        """Document problem answers the view itself can give (404, 409, 503)."""

        def decorate(view):
            for status in statuses:
                view = self.alt_response(status, response=PROBLEM_RESPONSES[status])(view)
            return view

        return decorate

    @staticmethod
    def _prepare_problem_doc(doc, doc_info, *, method, **kwargs):
        """Document what the parser and the key check answer: 401/403 where a
        key is needed, 400/413/415/422 where a JSON body is read, 422 for queries."""
        responses = doc.setdefault("responses", {})
        if doc_info.get("manual_doc", {}).get("security"):
            for status, name in KEY_PROBLEMS.items():
                responses.setdefault(str(status), name)
        if "requestBody" in doc:
            for status, name in BODY_PROBLEMS.items():
                responses.setdefault(str(status), name)
        if any(p.get("in") in ("query", "path") for p in doc.get("parameters", []) if isinstance(p, dict)):
            responses.setdefault("422", "UNPROCESSABLE_ENTITY")
        return doc
