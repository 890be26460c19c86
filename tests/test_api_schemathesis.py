"""The API's security pass (issue 19): schemathesis against the app's own OpenAPI document, every
operation called by a person of each role, with inputs that fit the document and inputs that break it.

What must hold for every answer (schemathesis's checks):

* ``not_a_server_error``: no 5xx, whatever was sent ("no endpoint answers 500 to bad input");
* ``status_code_conformance``: the status is one the operation declares;
* ``content_type_conformance``: the content type is one it declares for that status;
* ``response_schema_conformance``: the body fits the schema it declares.

Each (operation, role) is one test, so a failure names both and the reproducing ``curl``.  The
database is the cloud's real one, migrated, with the rig's gateways enrolled and one person of each
role, and the dock's small world (``tests.rig.documents.stock_the_dock``: a class, a product and two
lots, site1's cold room, yard and dock door) with one receiving note.  It is shared by the module
(the writes one test makes, say a product, are there for the next: closer to a real database than
an empty one each time), on SQLite (the embedded default) and PostgreSQL (production), where the
dialects differ in what they hand back (naive times on SQLite) and refuse (NUL in text, integers
past 64 bits on PostgreSQL).  Half the cases take their path parameters from that world
(``KNOWN``), so a write reaches the record it names; the other half make them up (mostly 404s).

Where the cases go (the whole suite must fit CI's 30 minutes, and this pass took 3 of them): each
operation has a lead role, the first in ``ROLES`` its door lets in, and ``EXAMPLES`` cases from it on
both dialects; every other role runs on SQLite alone, with ``EXAMPLES_OTHER`` cases.  Where the record,
not the door, decides what a role may do (``access.RECORD_CHECKED``: a refused move is written to the
audit trail), every role leads.  Why that keeps what the pass is for (it found: report times without a
UTC offset on SQLite, a bad body answered 422 before 401/403, and two routes' 500 on NUL or surrogate
text in ``gateway``, ``site`` or ``location``):

* hypothesis is derandomized per operation, so every role draws the same cases, and a run of fewer
  examples draws the first of them: another role let in would send the lead's inputs again with
  another token, which is all it has to show (that its answers, say a move refused by the record,
  are documented);
* what the dialects differ in is what the database stores and hands back, which only input past the
  door reaches: the lead carries every input there, on each dialect;
* a refused role is answered before its input is read, the same on either dialect, so refusals (and
  the order of 401/403 before 422) are judged on SQLite, every refused role with the two cases it
  always had.

Reproducible and bounded: hypothesis is derandomized (the same cases every run) and keeps no
example database; half the cases are valid by the document, half not.  Nothing is skipped: the two
streamed answers (``/audit.csv`` and a sensor's readings as CSV) are finite and are judged like any
other.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the security pass needs the [test] extra")
pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, create_engine  # noqa: E402

from coldgate.cloud.api import ApiTokens, access, create_app  # noqa: E402
from coldgate.cloud.identity.roles import ROLES  # noqa: E402
from tests.rig.catalog import GTIN  # noqa: E402
from tests.rig.documents import note, stock_the_dock  # noqa: E402
from tests.rig.people import bearer, person  # noqa: E402

#: Cases per (operation, role, dialect) for the operation's lead role (``_lead_roles``), and for any other
#: role (let in or refused): enough to reach each operation's refusals and answers, few enough for the
#: pass to take about a minute and a half on two busy cores.
EXAMPLES = 8
EXAMPLES_OTHER = 2
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: SQLite runs every role, PostgreSQL the lead roles (``_lead_roles``, module docstring).
DIALECTS = ("sqlite", "postgresql")

#: Operations not judged, each with the defect that keeps it out (none now; add one only with the
#: defect named and reported, never to quieten a check).
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


def _operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) of the OpenAPI document, read from an app that never touches its engine."""
    document = create_app(create_engine("sqlite://"), ApiTokens(())).openapi()
    return sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)


def _let_in(method: str, path: str, role: str) -> bool:
    """The role passes the route's door (``cloud/api/access.py``), so its input is read."""
    need = access.required(method, path)
    return need in (access.PUBLIC, access.SIGNED_IN) or need in ROLES[role]


def _lead_roles(method: str, path: str) -> tuple[str, ...]:
    """The roles whose cases carry the operation's inputs to the database (module docstring): the first
    one let in, or all of them where the record decides after the door."""
    if (method, path) in access.RECORD_CHECKED:
        return tuple(ROLES)
    let_in = [role for role in ROLES if _let_in(method, path, role)]
    if not let_in:
        raise AssertionError(f"{method} {path}: no role passes its door, so no input would reach a database")
    return (let_in[0],)


def _roles(dialect: str, method: str, path: str) -> tuple[str, ...]:
    return tuple(ROLES) if dialect == "sqlite" else _lead_roles(method, path)


def _cases() -> list[Any]:
    cases = []
    for dialect in DIALECTS:
        for method, path in _operations():
            marks = []
            if (method, path) in KNOWN_DEFECTS:
                marks.append(pytest.mark.xfail(reason=KNOWN_DEFECTS[method, path], strict=True))
            cases += [
                pytest.param(dialect, method, path, role, id=f"{dialect}-{method} {path} {role}", marks=marks)
                for role in _roles(dialect, method, path)
            ]
    return cases


class _Api:
    """The app over the dock's world, its schemathesis schema, a token of each role, and the path
    parameters that name something in the world."""

    def __init__(self, engine: Engine) -> None:
        stock_the_dock(engine)
        self.headers = {role: bearer(person(engine, role.replace("_", "-"), (role,))[1]) for role in ROLES}
        app = create_app(engine, ApiTokens(()))
        with TestClient(app) as client:
            made = client.post("/documents", json={**note(), "reason": "ASN received"},
                               headers=self.headers["dock_operator"])  # fmt: skip
        assert made.status_code == 201, made.text
        self.known = {
            "site": "site1", "location": "CR1", "door": "D1", "product": "VX10", "lot": "L1",
            "name": "2-8C", "gtin": GTIN, "gateway": "gw01", "login": "viewer", "seq": "1",
            "document_id": made.json()["id"],
        }  # fmt: skip
        self.schema = schemathesis.openapi.from_asgi("/openapi.json", app)


class _Databases:
    """The module's database of each dialect, made when a test first asks for it: a copy of the
    session's migrated template.  Not a parametrized module fixture, because the roles each dialect
    runs differ (``_cases``), and pytest keys a module fixture's instance by the case, not its value."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, templates: Any) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._templates = templates
        self._apis: dict[str, _Api] = {}
        self._engines: list[Engine] = []
        self._throwaway: list[Any] = []

    def api(self, dialect: str, request: pytest.FixtureRequest) -> _Api:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect: {dialect!r} is not one of {', '.join(DIALECTS)}")
        if dialect not in self._apis:
            self._apis[dialect] = self._make(dialect, request)
        return self._apis[dialect]

    def _make(self, dialect: str, request: pytest.FixtureRequest) -> _Api:
        from coldgate.cloud.db.engine import make_engine
        from tests.rig.ingest import enrol

        if dialect == "sqlite":
            path = self._tmp_path_factory.mktemp("schemathesis") / "cloud.sqlite3"
            shutil.copyfile(self._templates.sqlite(), path)
            url = f"sqlite:///{path}"
        else:
            from tests.rig.postgres import ThrowawayDatabase

            template = self._templates.postgresql()
            cluster = request.getfixturevalue("_pg_fallback_cluster")
            if cluster is None:
                database = ThrowawayDatabase.on_server(template=template)
            else:
                database = ThrowawayDatabase.in_cluster(cluster, template=template)
            self._throwaway.append(database)
            url = str(database.url)
        engine = make_engine(url, writer=True)
        self._engines.append(engine)
        enrol(engine)
        return _Api(engine)

    def close(self) -> None:
        for engine in self._engines:
            engine.dispose()
        for database in self._throwaway:
            database.drop()


@pytest.fixture(scope="module")
def _databases(tmp_path_factory: pytest.TempPathFactory, _migrated_templates: Any) -> Iterator[_Databases]:
    databases = _Databases(tmp_path_factory, _migrated_templates)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def api(dialect: str, request: pytest.FixtureRequest, _databases: _Databases) -> _Api:
    """The test's dialect's database, shared by the module (the writes one test makes are there for the
    next)."""
    return _databases.api(dialect, request)


@pytest.fixture(autouse=True)
def _quiet_refusals(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of refused requests each log a line; only a failure's own output is worth keeping."""
    caplog.set_level(logging.ERROR)


@pytest.mark.slow
@pytest.mark.parametrize(("dialect", "method", "path", "role"), _cases())
def test_every_operation_answers_as_documented(api: _Api, method: str, path: str, role: str) -> None:
    operation = api.schema[path][method]
    known = {p.name: api.known[p.name] for p in operation.path_parameters if p.name in api.known}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    if known:
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters=known) for mode in modes]
    cases = st.one_of(strategies)
    headers = api.headers[role]

    @settings(
        max_examples=EXAMPLES if role in _lead_roles(method, path) else EXAMPLES_OTHER,
        derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(case=cases)
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    answers_as_documented()


def test_every_role_and_operation_is_in_the_pass() -> None:
    """The pass covers what exists: on SQLite each role of ``cloud/identity/roles.py`` with every
    operation; on PostgreSQL every operation with a role its door lets in, every role where the record
    decides."""
    cases = {tuple(case.values) for case in _cases()}
    operations = _operations()
    assert {case for case in cases if case[0] == "sqlite"} == {
        ("sqlite", method, path, role) for method, path in operations for role in ROLES
    }
    assert len(operations) * len(ROLES) >= 6 * 100
    postgresql = {case[1:] for case in cases if case[0] == "postgresql"}
    assert {(method, path) for method, path, _ in postgresql} == set(operations)
    assert all(_let_in(*case) or case[:2] in access.RECORD_CHECKED for case in postgresql)
    record_checked = access.RECORD_CHECKED & set(operations)  # the dashboard's forms are not in the document
    assert record_checked
    assert {(*route, role) for route in record_checked for role in ROLES} <= postgresql
    assert set(KNOWN_DEFECTS) <= set(operations)
