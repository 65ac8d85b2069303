"""Partners and the disclosure log."""

from __future__ import annotations


def test_partners_and_disclosures(client, headers, person):
    created = client.post(
        "/v1/partners", json={"code": "acme", "name": "Acme", "contact_email": "Privacy@Acme.example.com"}, headers=headers
    )
    assert created.status_code == 201 and created.json["contact_email"] == "privacy@acme.example.com"
    assert (
        client.post("/v1/partners", json={"code": "acme", "name": "Again", "contact_email": "x@example.com"}, headers=headers).status_code
        == 409
    )
    assert (
        client.post("/v1/partners", json={"code": "Bad Code", "name": "x", "contact_email": "x@example.com"}, headers=headers).status_code
        == 422
    )
    assert [p["code"] for p in client.get("/v1/partners", headers=headers).json] == ["acme"]

    disclose = {"subject_id": person["id"], "partner": "acme", "data_categories": ["email"]}
    fulfilment = client.post("/v1/disclosures", json={**disclose, "purpose": "share_for_fulfilment"}, headers=headers)
    assert fulfilment.status_code == 201 and fulfilment.json["partner"] == "acme"
    marketing = client.post("/v1/disclosures", json={**disclose, "purpose": "share_for_marketing"}, headers=headers)
    assert marketing.status_code == 409 and marketing.json["errors"] == {"purpose": ["no_consent"]}
    client.post(
        "/v1/consents",
        json={"subject_id": person["id"], "channel": "partner", "purpose": "share_for_marketing", "status": "granted"},
        headers=headers,
    )
    assert client.post("/v1/disclosures", json={**disclose, "purpose": "share_for_marketing"}, headers=headers).status_code == 201
    assert (
        client.post(
            "/v1/disclosures", json={**disclose, "partner": "nobody", "purpose": "share_for_fulfilment"}, headers=headers
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/v1/disclosures", json={**disclose, "data_categories": ["dna"], "purpose": "share_for_fulfilment"}, headers=headers
        ).status_code
        == 422
    )


def test_a_disclosure_about_nobody_is_404(client, headers):
    client.post("/v1/partners", json={"code": "acme", "name": "Acme", "contact_email": "p@acme.example.com"}, headers=headers)
    response = client.post(
        "/v1/disclosures",
        json={
            "subject_id": "6f1d8a34-0000-4000-8000-000000000000",
            "partner": "acme",
            "data_categories": ["email"],
            "purpose": "share_for_fulfilment",
        },
        headers=headers,
    )
    assert response.status_code == 404 and response.content_type == "application/problem+json"
