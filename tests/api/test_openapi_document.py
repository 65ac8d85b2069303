"""The OpenAPI document describes the answers as they are sent: errors as
problem+json, health bodies, and input rules across fields."""

from __future__ import annotations

import jsonschema_rs
import pytest

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").json


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                yield path, method, operation


def resolved(spec, response):
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_error_an_operation_lists_is_problem_json(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "errors"}
    checked = 0
    for path, method, operation in operations(spec):
        assert "default" not in operation["responses"], (path, method)
        for status, response in operation["responses"].items():
            if int(status) >= 400 and not (path == "/readyz" and status == "503"):
                assert resolved(spec, response)["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, (path, method, status)
                checked += 1
    assert checked > 50


def test_keyed_operations_list_401_and_403_and_body_operations_the_parser_errors(spec):
    for path, method, operation in operations(spec):
        statuses = set(operation["responses"])
        if operation.get("security"):
            assert {"401", "403"} <= statuses, (path, method)
        if "requestBody" in operation and path != "/webhooks/stripe":
            assert {"400", "413", "415", "422"} <= statuses, (path, method)


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/v1/subjects/{subject_id}", "get", "404"),
        ("/v1/subjects/{subject_id}", "patch", "409"),
        ("/v1/consents", "post", "409"),
        ("/v1/requests/{request_id}/approve", "post", "409"),
        ("/v1/requests/{request_id}", "get", "422"),
        ("/v1/disclosures", "post", "409"),
        ("/webhooks/stripe", "post", "503"),
    ],
)
def test_operations_list_the_conflicts_and_absences_they_can_answer(spec, path, method, status):
    assert status in spec["paths"][path][method]["responses"]


def test_error_answers_match_the_documented_problem_schema(client, spec, admin):
    validator = jsonschema_rs.validator_for({**spec["components"]["schemas"]["Problem"], "components": spec["components"]})
    answers = [
        client.get("/v1/requests"),
        client.get("/v1/requests/99999999999", headers=admin),
        client.post("/v1/subjects", data=b"", headers={**admin, "Content-Type": "application/json"}),
        client.post("/v1/consents/batch", json={"events": [{"status": "perhaps"}]}, headers=admin),
    ]
    for answer in answers:
        assert answer.content_type == "application/problem+json"
        validator.validate(answer.json)


def test_health_bodies_are_documented_and_match(client, spec):
    schemas = spec["components"]["schemas"]
    ready = spec["paths"]["/readyz"]["get"]["responses"]
    assert set(ready) == {"200", "503"}
    for status in ("200", "503"):
        assert ready[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReadyOut"}
    # ReadyOut refers to RegisterStatusOut: validate with the components beside it.
    jsonschema_rs.validator_for({**schemas["ReadyOut"], "components": spec["components"]}).validate(client.get("/readyz").json)
    health = spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema_rs.validator_for(schemas[health["$ref"].rsplit("/", 1)[1]]).validate(client.get("/healthz").json)


def test_input_schemas_refuse_unknown_fields_and_say_which_purposes_each_channel_has(spec):
    schemas = spec["components"]["schemas"]
    for name in (
        "SubjectFields",
        "ConsentIn",
        "BulkCheckIn",
        "SuppressionIn",
        "UnsubscribeLinkIn",
        "RequestIn",
        "PartnerIn",
        "DisclosureIn",
    ):
        assert schemas[name]["additionalProperties"] is False, name
    consent_in = jsonschema_rs.validator_for({**schemas["ConsentIn"], "components": spec["components"]})
    event = {"email": "a@example.com", "channel": "email", "status": "granted"}
    assert consent_in.is_valid({**event, "purpose": "newsletter"})
    assert not consent_in.is_valid({**event, "purpose": "marketing"})
    assert not consent_in.is_valid({**event, "purpose": "newsletter", "external_ref": "also"})
    links = jsonschema_rs.validator_for(schemas["UnsubscribeLinkIn"])
    assert links.is_valid({"email": "a@example.com", "purpose": "newsletter"})
    assert not links.is_valid({"email": "a@example.com", "purpose": "transactional"})
    assert spec["paths"]["/v1/requests/{request_id}"]["parameters"][0]["schema"]["maximum"] == 2**31 - 1
