"""The API's security pass (issue 19): schemathesis against the app's own OpenAPI document, every
operation called by a person of each role, with inputs that fit the document and inputs that break it.

What must hold for every answer (schemathesis's checks):

* ``not_a_server_error``: no 5xx, whatever was sent ("no endpoint answers 500 to bad input");
* ``status_code_conformance``: the status is one the operation declares;
* ``content_type_conformance``: the content type is one it declares for that status;
* ``response_schema_conformance``: the body fits the schema it declares.

Each (operation, role) is one test, so a failure names both and the reproducing ``curl``.  The
database is the cloud's real one, migrated, with the rig's gateways enrolled and one person of each
role; it is shared by the module (the writes one test makes, say a product, are there for the
next: closer to a real database than an empty one each time), on SQLite (the embedded default) and
PostgreSQL (production), where the dialects differ in what they hand back (naive times on SQLite)
and refuse (NUL in text, integers past 64 bits on PostgreSQL).  Every path parameter is made up, so
most lookups are 404s: the pass judges what an operation does with any input, not its happy path
(the API's own tests do that).

Reproducible and bounded: hypothesis is derandomized (the same cases every run) and keeps no
example database; ``EXAMPLES`` cases per (operation, role, dialect), half of them valid by the
document and half not.  Nothing is skipped: the two streamed answers (``/audit.csv`` and a sensor's
readings as CSV) are finite and are judged like any other.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the security pass needs the [test] extra")
pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")

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

from coldgate.cloud.api import ApiTokens, create_app  # noqa: E402
from coldgate.cloud.identity.roles import ROLES  # noqa: E402
from tests.rig.people import bearer, person  # noqa: E402

#: Cases per (operation, role, dialect): enough to reach each operation's refusals and, for a role the
#: route lets in, its answers; small enough for the whole pass to take about two minutes on two cores.
EXAMPLES = 6
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


class _Api:
    """The app over a migrated database, its schemathesis schema, and a token of each role."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.headers = {role: bearer(person(engine, role.replace("_", "-"), (role,))[1]) for role in ROLES}
        self.schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine, ApiTokens(())))


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
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    headers = api.headers[role]

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
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
