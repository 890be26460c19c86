"""A site's time zone: set by an admin through the API or the CLI, refused precisely, audited in the
same transaction, on both dialects; listed for anyone who may read."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import verify
from coldgate.cloud.catalog.sites import check_time_zone, set_time_zone
from coldgate.cloud.cli import cloud
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.identity.users import NotFound, UserInputError
from tests.rig.ingest import SITE
from tests.rig.people import SETUP, bearer, person


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


def _audit(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(conn.execute(query))


def test_an_admin_sets_a_zone_and_it_is_audited(engine: Engine, client: TestClient) -> None:
    admin_id, admin = person(engine, "ada", ("admin",))
    _, viewer = person(engine, "vera", ("viewer",))
    listed = client.get("/sites", headers=bearer(viewer))
    assert listed.status_code == 200
    assert {"id": SITE, "name": None, "time_zone": "UTC"} in listed.json()["items"]  # enrolled, not heard
    refused = client.put(f"/sites/{SITE}/time-zone", json={"time_zone": "Europe/Berlin"},
                         headers=bearer(viewer))  # fmt: skip
    assert refused.status_code == 403 and "settings.manage" in refused.text
    done = client.put(f"/sites/{SITE}/time-zone", json={"time_zone": "Europe/Berlin"}, headers=bearer(admin))
    assert done.status_code == 200, done.text
    assert done.json() == {"id": SITE, "name": None, "time_zone": "Europe/Berlin"}
    again = client.put(f"/sites/{SITE}/time-zone", json={"time_zone": "America/New_York"},
                       headers=bearer(admin))  # fmt: skip
    assert again.status_code == 200
    entries = _audit(engine, "site.time_zone")
    assert [json.loads(e.after)["time_zone"] for e in entries] == ["Europe/Berlin", "America/New_York"]
    assert entries[0].before is None
    assert json.loads(entries[1].before) == {"id": SITE, "time_zone": "Europe/Berlin"}
    assert entries[1].actor_id == admin_id and entries[1].entity_id == SITE
    assert client.get("/sites", headers=bearer(viewer)).json()["items"][0]["time_zone"] == "America/New_York"
    with engine.connect() as conn:
        assert verify(conn)[1] is None


def test_a_bad_zone_is_a_422_naming_the_field_and_an_unknown_site_a_404(
    engine: Engine, client: TestClient
) -> None:
    _, admin = person(engine, "ada", ("admin",))
    bad = client.put(f"/sites/{SITE}/time-zone", json={"time_zone": "Europe/Bonn"}, headers=bearer(admin))
    assert bad.status_code == 422
    detail = bad.json()["detail"][0]
    assert detail["loc"] == ["body", "time_zone"]
    assert "'Europe/Bonn' is not an IANA time zone" in detail["msg"]
    missing = client.put("/sites/nowhere/time-zone", json={"time_zone": "UTC"}, headers=bearer(admin))
    assert missing.status_code == 404 and "no site 'nowhere'" in missing.text
    assert _audit(engine, "site.time_zone") == []


@pytest.mark.parametrize(
    ("zone", "why"),
    [("", "not an IANA"), ("../../etc/passwd", "not an IANA"), ("/etc/localtime", "not an IANA"),
     ("Europe", "not an IANA"), ("Europe/Berlin\n", "control characters"), ("x" * 65, "longer than 64"),
     (None, "must be text")],
)  # fmt: skip
def test_check_time_zone_refuses_what_is_no_zone(zone: object, why: str) -> None:
    with pytest.raises(UserInputError, match=why) as caught:
        check_time_zone(zone)
    assert caught.value.field == "time_zone"


def test_check_time_zone_takes_iana_names() -> None:
    assert [check_time_zone(z) for z in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires")] == [
        "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires",
    ]  # fmt: skip


@pytest.fixture
def admin_client(engine: Engine, client: TestClient) -> tuple[TestClient, dict[str, str]]:
    """One app and one admin for every example of a property test: building the app (its routes and
    OpenAPI check) per example cost ~0.9 s of each; the examples only differ in what they send."""
    return client, bearer(person(engine, "ada", ("admin",))[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.one_of(st.text(max_size=80), st.sampled_from(["Europe/Berlin", "UTC", "Etc/GMT+5"])))
def test_any_zone_string_is_a_200_or_a_422_never_a_500(
    admin_client: tuple[TestClient, dict[str, str]], zone: str
) -> None:
    client, admin = admin_client
    reply = client.put(f"/sites/{SITE}/time-zone", json={"time_zone": zone}, headers=admin)
    assert reply.status_code in (200, 422), reply.text


def test_the_write_function_refuses_an_unknown_site(engine: Engine) -> None:
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn, pytest.raises(NotFound, match="no site"):
        set_time_zone(conn, "elsewhere", "UTC", by=SETUP, now=now)


def test_the_cli_sets_and_lists_zones_as_a_named_admin(engine: Engine, db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    admin_id, _ = person(engine, "ada", ("admin",))
    person(engine, "quinn", ("qa_manager",))
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cloud, ["sites", *args], catch_exceptions=False)

    done = run("time-zone", str(config), SITE, "Europe/Berlin", "--by", "ada")
    assert done.exit_code == 0, done.output
    assert f"site {SITE}: times now shown in Europe/Berlin" in done.output
    listed = run("list", str(config))
    assert f"{SITE}\tEurope/Berlin\t-" in listed.output and "1 site(s)" in listed.output
    not_admin = run("time-zone", str(config), SITE, "UTC", "--by", "quinn")
    assert not_admin.exit_code != 0 and "may not change sites (settings.manage" in not_admin.output
    bad = run("time-zone", str(config), SITE, "Mars/Olympus", "--by", "ada")
    assert bad.exit_code != 0 and "time_zone: 'Mars/Olympus' is not an IANA time zone" in bad.output
    nobody = run("time-zone", str(config), SITE, "UTC", "--by", "nobody")
    assert nobody.exit_code != 0 and "no user 'nobody'" in nobody.output
    entries = _audit(engine, "site.time_zone")
    assert len(entries) == 1 and entries[0].actor_id == admin_id and entries[0].actor_name == "Ada Tester"
    assert "coldgate CLI" in (entries[0].client or "")
