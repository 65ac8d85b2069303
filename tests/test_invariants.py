"""The service's promises, stated as invariants and held against a small model
of the rules while Hypothesis drives the public interface (HTTP, the import
command, signed links, rights requests) through random sequences of steps:

(a) the newest `occurred_at` wins, and on a tie the withdrawal wins;
(b) a person suppressed or erased is never allowed for marketing, whichever key
    the check uses;
(c) no plain text of an erased identifier is left anywhere: every text, JSON
    and binary column of every table, the export folder and the logs;
(d) single check, bulk check, whole-list screening and the current-state view
    agree (with the model);
(e) the ledger holds exactly the acknowledged changes;
(f) the decisions read model answers every key ever used, for every purpose,
    as the tables it is kept from do, and is what a rebuild makes of them.

`make test` runs a bounded profile; PREFS_INVARIANT_EXAMPLES and
PREFS_INVARIANT_STEPS raise it (.ci/run does). A failure prints the steps.
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from prefs_service import channels
from prefs_service.access import service as access
from prefs_service.cli import main
from prefs_service.consent import checks
from prefs_service.consent.models import ConsentEvent, Decision
from prefs_service.extensions import db, limiter
from prefs_service.jobs.dispatch import jobs
from prefs_service.logs import JsonFormatter
from prefs_service.outbox import QUEUED, Job
from tests.conftest import _empty_tables
from tests.helpers import plaintext_holders, screen_list
from tests.invariant_model import KINDS, Model, Person

EXAMPLES = int(os.environ.get("PREFS_INVARIANT_EXAMPLES", "6"))
STEPS = int(os.environ.get("PREFS_INVARIANT_STEPS", "12"))

PAIRS = channels.all_purposes()
OPT_IN = [(c, p) for c, p in PAIRS if channels.CHANNELS[c].purpose(p).needs_consent]
EMAIL_OPT_IN = [p for c, p in OPT_IN if c == "email"]
# The pairs every check compares on every step: one per kind of rule.
CHECKED = [("email", "newsletter"), ("email", "transactional"), ("phone", "marketing"), ("mail", "marketing"),
           ("partner", "share_for_marketing"), ("partner", "share_for_fulfilment"), ("profile", "profile_enrichment")]  # fmt: skip
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
EMAIL_PURPOSES = st.sampled_from(EMAIL_OPT_IN)


class ConsentMachine(RuleBasedStateMachine):
    """Set up by `test_the_invariants_hold` with the app and its test client."""

    app = None
    client = None
    smtp = None
    tmp = None
    log_lines: ClassVar[list[str]] = []

    people = Bundle("people")

    def __init__(self):
        super().__init__()
        _empty_tables(self.app)
        with self.app.app_context():
            limiter.reset()
            _, key = access.create_key(name="invariants", scopes=["admin"], actor="test")
            db.session.commit()
        self.headers = {"Authorization": f"Bearer {key}"}
        self.model = Model()
        self.numbers = itertools.count(1)
        self.smtp.clear()
        self.log_lines.clear()

    # --- helpers -----------------------------------------------------------------------
    def fresh(self) -> int:
        return next(self.numbers)

    def drain_jobs(self) -> None:
        """Run every due job now, in this thread: erasures, corrections, mail."""
        with self.app.app_context():
            for _ in range(50):
                due = db.session.scalars(sa.select(Job.id).where(Job.status == QUEUED, Job.run_after <= datetime.now(UTC))).all()
                db.session.rollback()
                if not due:
                    return
                for job_id in due:
                    assert jobs().execute(job_id) == "done", f"job {job_id} did not finish"
        raise AssertionError("jobs kept coming")

    def post(self, path, body, expect: int):
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == expect, f"{path} {body} answered {response.status_code}: {response.get_json()}"
        return response

    def live(self, person: Person) -> bool:
        return not person.erased

    def links_for(self, person: Person, purpose: str = "newsletter"):
        return self.client.post("/v1/unsubscribe-links", json={"subject_id": person.id, "purpose": purpose}, headers=self.headers)

    # --- people ------------------------------------------------------------------------
    @rule(target=people, with_phone=st.booleans(), with_postal=st.booleans(), with_ref=st.booleans(), stranger=st.booleans())
    def create_person(self, with_phone, with_postal, with_ref, stranger):
        n = self.fresh()
        keys = {"email": self.model.strangers.pop() if stranger and self.model.strangers else f"p{n}.x@example.com"}
        if with_phone:
            keys["phone"] = f"+44207946{n:04d}"
        if with_postal:
            keys["postal_address"] = f"no{n}x invariant road, london, sw1a 1aa"
        if with_ref:
            keys["external_ref"] = f"CRM-{n}-REF"
        name = f"Name{n}Zq"
        body = self.post("/v1/subjects", {**keys, "name": name}, 201).json
        person = Person(number=n, id=body["id"], keys={f: body[f] for f in keys}, name=name)
        self.model.people.append(person)
        self.model.used.update(person.keys.items())
        return person

    @rule(person=people, kind=st.sampled_from(["phone", "postal_address", "email"]))
    def change_identifier(self, person, kind):
        n = self.fresh()
        value = {"phone": f"+44207946{n:04d}", "postal_address": f"no{n}x changed lane, leeds, ls1 1aa", "email": f"c{n}.x@example.com"}[
            kind
        ]
        response = self.client.patch(f"/v1/subjects/{person.id}", json={kind: value}, headers=self.headers)
        if person.erased:
            assert response.status_code == 409 and response.json["type"].endswith("/problems/erased")
            return
        assert response.status_code == 200, response.json
        person.keys[kind] = response.json[kind]
        self.model.used.add((kind, person.keys[kind]))

    @rule(person=people, other=people, kind=st.sampled_from(["email", "phone", "external_ref"]))
    def take_someone_elses_key(self, person, other, kind):
        """An identifier held by another person, or left by an erased one, is refused."""
        value = other.keys.get(kind)
        if value is None or other is person:
            return
        response = self.client.patch(f"/v1/subjects/{person.id}", json={kind: value}, headers=self.headers)
        assert response.status_code == 409, response.json
        created = self.client.post("/v1/subjects", json={kind: value, "name": "Someone Else"}, headers=self.headers)
        if other.erased:
            assert created.status_code == 409 and created.json["type"].endswith("/problems/erased")
        else:
            assert (created.status_code == 200 and created.json["id"] == other.id) or created.status_code == 409

    # --- recording --------------------------------------------------------------------
    @rule(person=people, key=st.sampled_from(["subject_id", "email", "phone", "external_ref"]), pair=st.sampled_from(PAIRS),
          status=st.sampled_from(["granted", "withdrawn"]), hour=st.integers(0, 6))  # fmt: skip
    def record_event(self, person, key, pair, status, hour):
        value = self.model.keys_of(person).get(key)
        if value is None:
            return
        body = {key: value, "channel": pair[0], "purpose": pair[1], "status": status,
                "occurred_at": (BASE_TIME + timedelta(hours=hour)).isoformat(), "evidence": {"ip": "198.51.100.7", "note": f"note {person.name}"}}  # fmt: skip
        if person.erased:
            assert self.post("/v1/consents", body, 409).json["type"].endswith("/problems/erased")
            return
        self.post("/v1/consents", body, 201)
        person.record(pair, hour, status)

    @rule(entries=st.lists(st.tuples(people, st.sampled_from(["subject_id", "email", "external_ref"]), st.sampled_from(OPT_IN),
                                     st.sampled_from(["granted", "withdrawn"]), st.integers(0, 6)), min_size=1, max_size=6),
          via_csv=st.booleans())  # fmt: skip
    def import_batch(self, entries, via_csv):
        items = []
        for person, key, pair, status, hour in entries:
            value = self.model.keys_of(person).get(key) or person.id
            key = key if self.model.keys_of(person).get(key) else "subject_id"
            items.append((person, key, value, pair, status, hour))
        expected_skipped = [i for i, item in enumerate(items) if item[0].erased]
        if via_csv:
            self._import_csv(items, expected_skipped)
        else:
            events = [{key: value, "channel": pair[0], "purpose": pair[1], "status": status, "source": "import",
                       "occurred_at": (BASE_TIME + timedelta(hours=hour)).isoformat()} for _, key, value, pair, status, hour in items]  # fmt: skip
            answer = self.post("/v1/consents/batch", {"events": events}, 201).json
            assert answer == {"recorded": len(items) - len(expected_skipped), "skipped_erased": expected_skipped}
        for person, _, _, pair, status, hour in items:
            if not person.erased:
                person.record(pair, hour, status)

    def _import_csv(self, items, expected_skipped) -> None:
        path = self.tmp / f"import-{self.fresh()}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["subject_id", "email", "external_ref", "channel", "purpose", "status", "occurred_at"])
            for _, key, value, pair, status, hour in items:
                person_columns = [value if key == k else "" for k in ("subject_id", "email", "external_ref")]
                writer.writerow([*person_columns, *pair, status, (BASE_TIME + timedelta(hours=hour)).isoformat()])
        result = self.app.test_cli_runner().invoke(main, ["import", "consents", str(path)])
        assert result.exit_code == 0, result.output
        assert f"Imported {len(items) - len(expected_skipped)} consent events" in result.output
        if expected_skipped:
            assert f"Skipped {len(expected_skipped)} rows" in result.output
        path.unlink()

    @rule(
        person=people,
        kind=st.sampled_from(["email", "phone", "postal_address"]),
        reason=st.sampled_from(["bounce", "complaint", "objection", "manual"]),
    )
    def suppress(self, person, kind, reason):
        value = person.keys.get(kind)
        if value is None:
            return
        response = self.client.post("/v1/suppressions", json={kind: value, "reason": reason}, headers=self.headers)
        assert response.status_code in (200, 201), response.json
        self.model.suppressed.setdefault((kind, value), reason)

    @rule(reason=st.sampled_from(["bounce", "complaint"]))
    def suppress_a_stranger(self, reason):
        """An address suppressed before anyone with it signs up (create_person may take it up)."""
        address = f"s{self.fresh()}.x@example.com"
        response = self.client.post("/v1/suppressions", json={"email": address, "reason": reason}, headers=self.headers)
        assert response.status_code == 201, response.json
        self.model.suppressed[("email", address)] = reason
        self.model.strangers.append(address)
        self.model.used.add(("email", address))

    # --- the person's own links -----------------------------------------------------------
    @rule(person=people, purpose=EMAIL_PURPOSES)
    def one_click(self, person, purpose):
        minted = self.links_for(person, purpose)
        if person.erased:
            assert minted.status_code == 404
            return
        path = urlsplit(minted.json["url"]).path
        assert self.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        if person.status(("email", purpose)) != "withdrawn":
            person.record(("email", purpose), self.model.now(), "withdrawn")

    def _preferences(self, person: Person, **headers):
        minted = self.links_for(person)
        if person.erased:
            assert minted.status_code == 404
            return None, None
        path = urlsplit(minted.json["preferences_url"]).path
        page = self.client.get(path, headers=headers)
        assert page.status_code == 200
        return path, re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()

    def _shown_ticked(self, person: Person) -> set[tuple[str, str]]:
        """The boxes the preference page shows ticked: granted, on a channel we hold, not suppressed."""
        kinds = {f for f in person.keys if f in KINDS} | {None}
        return {
            pair
            for pair in OPT_IN
            if channels.CHANNELS[pair[0]].identifier_kind in kinds and self.model.answer(person, pair)[1] == "granted"
        }

    def _says_saved(self, path: str, answer, before: set[tuple[str, str]], person: Person) -> None:
        """Post/Redirect/Get: the page says once how many boxes the person saw change."""
        assert answer.status_code == 303 and urlsplit(answer.headers["Location"]).path == path
        shown = len(before ^ self._shown_ticked(person))
        said = self.client.get(path).get_data(as_text=True)
        assert (f"({shown} change" in said) if shown else ("nothing needed changing" in said), shown

    @rule(person=people, granted=st.sets(st.sampled_from(OPT_IN), max_size=4))
    def save_preferences(self, person, granted):
        path, token = self._preferences(person)
        if path is None:
            return
        before = self._shown_ticked(person)
        answer = self.client.post(path, data={"csrf_token": token, "action": "save", "granted": [f"{c}.{p}" for c, p in sorted(granted)]})
        assert answer.status_code == 303
        kinds = {f for f in person.keys if f in KINDS}
        for channel, purpose in OPT_IN:
            if channels.CHANNELS[channel].identifier_kind not in kinds | {None}:
                continue
            wanted, now = ("granted" if (channel, purpose) in granted else "withdrawn"), person.status((channel, purpose))
            if now != wanted and not (now is None and wanted == "withdrawn"):
                person.record((channel, purpose), self.model.now(), wanted, on_preference_page=True)
        for channel in {c for c, _ in granted}:  # the person's own grant lifts a suppression of that channel
            kind = channels.CHANNELS[channel].identifier_kind
            value = person.keys.get(kind) if kind in KINDS else None
            self.model.suppressed.pop((kind, value), None)
        self._says_saved(path, answer, before, person)

    @rule(person=people)
    def stop_all(self, person):
        path, token = self._preferences(person)
        if path is None:
            return
        before = self._shown_ticked(person)
        answer = self.client.post(path, data={"csrf_token": token, "action": "stop_all"})
        for pair in PAIRS:
            if channels.CHANNELS[pair[0]].purpose(pair[1]).marketing and person.status(pair) != "withdrawn":
                person.record(pair, self.model.now(), "withdrawn")
        self._says_saved(path, answer, before, person)

    @rule(person=people)
    def global_privacy_control(self, person):
        path, _ = self._preferences(person, **{"Sec-GPC": "1"})
        if path is None:
            return
        # Recorded once; again only over a grant that did not come from the person's own choice on the preference page.
        sharing = ("partner", "share_for_marketing")
        deciding = person.deciding(sharing)
        if not person.gpc_seen or (deciding is not None and deciding[1] == "granted" and not deciding[2]):
            person.record(sharing, self.model.now(), "withdrawn")
            person.gpc_seen = True

    # --- rights requests -------------------------------------------------------------------
    @precondition(lambda self: any(not p.erased for p in self.model.people))
    @rule(person=people)
    def erase(self, person):
        if person.erased:
            return
        self.post("/v1/requests", {"type": "erasure", "subject_id": person.id, "verified": True}, 201)
        self.drain_jobs()
        person.erased = True
        for field_name, value in person.keys.items():
            self.model.erased_keys.add((field_name, value))
            if field_name in KINDS:
                self.model.suppressed[(field_name, value)] = "erasure"
        self.model.erased_text |= {*person.keys.values(), person.name}

    @rule(person=people, to_erased=st.booleans())
    def correct_email(self, person, to_erased):
        erased_emails = sorted(v for f, v in self.model.erased_keys if f == "email")
        new = erased_emails[0] if to_erased and erased_emails else f"fixed{self.fresh()}.x@example.com"
        body = {"type": "correction", "subject_id": person.id, "changes": {"email": new}, "verified": True}
        if person.erased or ("email", new) in self.model.erased_keys:
            assert self.post("/v1/requests", body, 409).json["type"].endswith("/problems/erased")
            return
        made = self.post("/v1/requests", body, 201).json
        self.post(f"/v1/requests/{made['id']}/approve", {}, 200)
        self.drain_jobs()
        assert self.client.get(f"/v1/requests/{made['id']}", headers=self.headers).json["status"] == "completed"
        person.keys["email"] = new
        self.model.used.add(("email", new))

    @rule(person=people, purpose=EMAIL_PURPOSES)
    def come_back(self, person, purpose):
        """The only way back for an erased person: a link mailed to their old address."""
        if not person.erased or ("email", person.keys.get("email")) not in self.model.erased_keys:
            return
        address = person.keys["email"]
        form = self.client.get("/preferences")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', form.data).group(1).decode()
        self.smtp.clear()
        assert self.client.post("/preferences", data={"csrf_token": token, "email": address}).status_code == 200
        self.drain_jobs()
        [mail] = [m for m in self.smtp.wait_for(1) if m["To"] == address]
        link = urlsplit(re.search(r"https?://\S+/preferences/return/\S+", mail.get_body(("plain",)).get_content()).group(0)).path
        offer = self.client.get(link)
        token = re.search(rb'name="csrf_token" value="([^"]+)"', offer.data).group(1).decode()
        answer = self.client.post(link, data={"csrf_token": token, "email": address, "granted": [f"email.{purpose}"]})
        assert answer.status_code == 303, answer.data[-500:]
        n = self.fresh()
        returned = self.client.post("/v1/unsubscribe-links", json={"email": address, "purpose": purpose}, headers=self.headers).json
        back = Person(number=n, id=returned["subject_id"], keys={"email": address}, name=f"returned{n}")
        back.record(("email", purpose), self.model.now(), "granted")
        self.model.people.append(back)
        del person.keys["email"]  # the address names the new person now, not the erased one
        self.model.erased_keys.discard(("email", address))
        self.model.suppressed.pop(("email", address), None)
        self.model.erased_text.discard(address)

    # --- the invariants ---------------------------------------------------------------------
    @invariant()
    def checks_agree_with_the_model(self):
        people = self.model.people
        if not people:
            return
        for person in people:  # the current-state view
            view = self.client.get(f"/v1/subjects/{person.id}/consents", headers=self.headers).json["consents"]
            got = {(row["channel"], row["purpose"]): (row["allowed"], row["reason"]) for row in view}
            assert got == {pair: self.model.answer(person, pair) for pair in PAIRS}, person
        for pair in CHECKED:
            for key in ("subject_id", "email", "phone", "postal_address", "external_ref"):
                named = [(p, self.model.keys_of(p)[key]) for p in people if key in self.model.keys_of(p)]
                if not named:
                    continue
                body = {"channel": pair[0], "purpose": pair[1], "identifier_type": key, "recipients": [v for _, v in named]}
                results = self.post("/v1/consent/check", body, 200).json["results"]
                assert [(r["allowed"], r["reason"]) for r in results] == [self.model.answer(p, pair) for p, _ in named], (pair, key)
                as_csv = (CHECKED.index(pair) + len(key)) % 2 == 0  # both formats, across pairs and keys
                screened = screen_list(self.client, self.headers, pair=pair, key=key, recipients=[v for _, v in named], as_csv=as_csv)
                assert screened == [(value, *self.model.answer(p, pair)) for p, value in named], (pair, key)
                for person, value in named[:1]:  # the single check, by the same key
                    single = self.client.get(
                        "/v1/consent/check", query_string={"channel": pair[0], "purpose": pair[1], key: value}, headers=self.headers
                    )
                    assert (single.json["allowed"], single.json["reason"]) == self.model.answer(person, pair), (person, pair, key)

    @invariant()
    def the_read_model_answers_as_the_tables_do(self):
        """Every key ever given (held, changed away, suppressed, erased) and
        every subject id, for every purpose: the read model's answer is the
        one the tables give; and a rebuild makes the very same rows."""
        used = {*self.model.used, *(("subject_id", p.id) for p in self.model.people)}
        used.update(("external_ref", v) for p in self.model.people if (v := p.keys.get("external_ref")))
        with self.app.app_context():
            for key in ("subject_id", "external_ref", "email", "phone", "postal_address"):
                values = sorted(v for k, v in used if k == key)
                for channel, purpose in PAIRS if values else ():
                    named = {"channel": channel, "purpose": purpose, "key": key, "values": values}
                    assert checks.check_many(**named) == checks.check_from_tables(**named), (channel, purpose, key)
            db.session.rollback()
        before = self._decisions()
        result = self.app.test_cli_runner().invoke(main, ["screening", "rebuild"])
        assert result.exit_code == 0, result.output
        assert self._decisions() == before

    def _decisions(self) -> list[tuple]:
        with self.app.app_context():
            rows = [tuple(row) for row in db.session.execute(sa.select(Decision.__table__).order_by(*Decision.__table__.primary_key))]
            db.session.rollback()
        return rows

    @invariant()
    def the_ledger_holds_the_acknowledged_changes(self):
        with self.app.app_context():
            counts = dict(db.session.execute(sa.select(ConsentEvent.subject_id, sa.func.count()).group_by(ConsentEvent.subject_id)).all())
            db.session.rollback()
        assert {str(k): v for k, v in counts.items()} == {p.id: p.ledger_size() for p in self.model.people if p.ledger_size()}

    @invariant()
    def nothing_of_an_erased_person_is_left(self):
        gone = sorted(self.model.erased_text)
        if not gone:
            return
        assert plaintext_holders(self.app, gone) == []
        exports = self.app.config["PREFS"].export_dir
        for path in exports.glob("*") if exports.exists() else []:
            assert not any(text.lower().encode() in path.read_bytes().lower() for text in gone), path.name
        logged = "\n".join(self.log_lines).lower()
        assert not [text for text in gone if text.lower() in logged]


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines
        self.setFormatter(JsonFormatter())

    def emit(self, record):
        self.lines.append(self.format(record))


def test_the_invariants_hold(app, smtp, tmp_path):
    handler = _Lines(ConsentMachine.log_lines)
    logging.getLogger().addHandler(handler)
    ConsentMachine.app, ConsentMachine.client, ConsentMachine.smtp, ConsentMachine.tmp = app, app.test_client(), smtp, tmp_path
    try:
        run_state_machine_as_test(
            ConsentMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
            ),
        )
    finally:
        logging.getLogger().removeHandler(handler)
