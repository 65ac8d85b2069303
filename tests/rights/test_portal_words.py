"""The privacy-request form says what is wrong in words, beside the field it concerns,
and keeps what was typed: even when a new value belongs to someone we erased."""

from __future__ import annotations

import re


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def test_a_correction_to_an_erased_persons_number_is_a_form_error_not_a_dead_end(client, person, headers, worker):
    erin = client.post("/v1/subjects", json={"email": "erin@example.com", "phone": "+442079460123"}, headers=headers).json
    made = client.post("/v1/requests", json={"type": "erasure", "subject_id": erin["id"], "verified": True}, headers=headers)
    worker.wait()
    assert client.get(f"/v1/requests/{made.json['id']}", headers=headers).json["status"] == "completed"
    form = client.get("/privacy-requests/new")
    answer = client.post("/privacy-requests/new", data={"csrf_token": csrf_of(form), "type": "correction", "email": "ann@example.com",
                                                        "phone": "+44 20 7946 0123", "explanation": "my new number"})  # fmt: skip
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "<title>Error: Your data: make a request" in html
    assert '<a href="#phone">Correct telephone number</a>: We erased the data of the person this belongs to' in html
    assert 'value="+44 20 7946 0123"' in html and "my new number</textarea>" in html
