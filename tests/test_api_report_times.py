"""A stored report's ``generated_at`` carries its zone on every dialect (found by the schemathesis pass,
tests/test_api_schemathesis.py): SQLite hands the stored time back naive, and the API printed it as
``2026-12-07T22:08:03.583550``, which is not the RFC 3339 ``date-time`` the OpenAPI document declares."""

from __future__ import annotations

import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from tests.rig.people import bearer, person


def _aware_utc(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text)
    assert moment.utcoffset() == datetime.timedelta(0), text
    return moment


def test_generated_at_is_utc_with_its_offset_in_every_answer(engine: Engine) -> None:
    _, qa = person(engine, "marta", ("qa",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        before = datetime.datetime.now(datetime.UTC)
        made = client.post("/reports/calibration", json={"format": "csv"}, headers=bearer(qa))
        assert made.status_code == 201, made.text
        generated = _aware_utc(made.json()["generated_at"])
        assert before - datetime.timedelta(seconds=5) <= generated <= datetime.datetime.now(datetime.UTC)
        report_id = made.json()["id"]
        listed = client.get("/reports", headers=bearer(qa))
        assert listed.status_code == 200
        assert [_aware_utc(r["generated_at"]) for r in listed.json() if r["id"] == report_id] == [generated]
        meta = client.get(f"/reports/{report_id}/meta", headers=bearer(qa))
        assert _aware_utc(meta.json()["generated_at"]) == generated
