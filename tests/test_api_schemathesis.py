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

Reproducible and bounded: hypothesis is derandomized (the same cases every run) and keeps no
example database.  A role the route refuses at the door (403 before the input is read) gets
``EXAMPLES_REFUSED`` cases, one let in ``EXAMPLES``; half valid by the document, half not.  Nothing
is skipped: the two streamed answers (``/audit.csv`` and a sensor's readings as CSV) are finite and
are judged like any other.
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

#: Cases per (operation, role, dialect) for a role the route lets in, and for one it refuses: enough to
#: reach each operation's refusals and answers, few enough for the pass to take about two minutes.
EXAMPLES = 8
EXAMPLES_REFUSED = 2
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: Operations not judged, each with the defect that keeps it out (none now; add one only with the
#: defect named and reported, never to quieten a check).
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


def _operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) of the OpenAPI document, read from an app that never touches its engine."""
    document = create_app(create_engine("sqlite://"), ApiTokens(())).openapi()
    return sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)


def _cases() -> list[Any]:
    cases = []
    for method, path in _operations():
        marks = []
        if (method, path) in KNOWN_DEFECTS:
            marks.append(pytest.mark.xfail(reason=KNOWN_DEFECTS[method, path], strict=True))
        cases += [
            pytest.param(method, path, role, id=f"{method} {path} {role}", marks=marks) for role in ROLES
        ]
    return cases


def _let_in(method: str, path: str, role: str) -> bool:
    """The role passes the route's door (``cloud/api/access.py``), so its input is read."""
    need = access.required(method, path)
    return need in (access.PUBLIC, access.SIGNED_IN) or need in ROLES[role]


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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _migrated_templates: Any
) -> Iterator[_Api]:
    """One database per dialect for the whole module: a copy of the session's migrated template."""
    from coldgate.cloud.db.engine import make_engine
    from tests.rig.ingest import enrol

    database = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("schemathesis") / "cloud.sqlite3"
        shutil.copyfile(_migrated_templates.sqlite(), path)
        url = f"sqlite:///{path}"
    else:
        from tests.rig.postgres import ThrowawayDatabase

        template = _migrated_templates.postgresql()
        cluster = request.getfixturevalue("_pg_fallback_cluster")
        if cluster is None:
            database = ThrowawayDatabase.on_server(template=template)
        else:
            database = ThrowawayDatabase.in_cluster(cluster, template=template)
        url = str(database.url)
    engine = make_engine(url, writer=True)
    enrol(engine)
    try:
        yield _Api(engine)
    finally:
        engine.dispose()
        if database is not None:
            database.drop()


@pytest.fixture(autouse=True)
def _quiet_refusals(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of refused requests each log a line; only a failure's own output is worth keeping."""
    caplog.set_level(logging.ERROR)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "role"), _cases())
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
        max_examples=EXAMPLES if _let_in(method, path, role) else EXAMPLES_REFUSED,
        derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(case=cases)
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    answers_as_documented()


def test_every_role_and_operation_is_in_the_pass() -> None:
    """The pass covers what exists: each role of ``cloud/identity/roles.py`` and every operation."""
    ids = {(method, path, role) for method, path in _operations() for role in ROLES}
    assert len(ids) == len(_operations()) * len(ROLES) >= 6 * 100
    assert set(KNOWN_DEFECTS) <= set(_operations())
