"""The Blueprint every JSON API module uses."""

from __future__ import annotations

import functools

import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser


class StrictParser(FlaskParser):
    # A misspelt query parameter is an error to report, not a value to ignore.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE, "querystring": ma.RAISE}

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


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = StrictParser()
