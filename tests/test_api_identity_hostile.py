"""Hostile input to the sign-in, user and token endpoints is a 4xx naming the field, never a 500,
and a refusal writes nothing (issue 12), on both dialects.

Every request goes through the app as a client sees it (``TestClient`` with
``raise_server_exceptions=False``, so a crash is seen as the 500 a client would get).  Bodies are
sent as the bytes ``json.dumps`` makes (ASCII, so a lone surrogate travels as its ``\\ud800``
escape, as a careless encoder sends it) or as raw bytes, never through httpx's own encoder.

What is checked after every request, from the API itself (``GET /users``, ``GET /tokens`` and
``GET /audit`` as an admin who is also a QA manager):

* a refused sign-in is a 401 with exactly one new audit entry, ``user.login_failed``, and nothing
  else changed but that user's failure count (when the login named one);
* a request refused as malformed (422, also for a body that is not UTF-8) writes nothing at all,
  at the sign-in too: there was no attempt to audit;
* any other refusal is a 422 whose every error's ``loc`` starts ``["body", <that field>]`` (or
  ``["path", <that parameter>]``), and the users, tokens and audit trail are as they were;
* what is accepted (hostile-looking text can be a fine printed name) is stored as sent, with its
  one audit entry.

Lone surrogates inside a body and JSON's non-standard ``NaN``/``Infinity`` were 500s; they have
their own regression tests at the end (one value per field).  The property tests keep clear of
them, since pydantic refuses them before any rule the properties model.  A body that is not UTF-8
was a bare 400 naming nothing; it is a 422 naming the byte now, like any other unparsable body.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("sqlalchemy", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("pwdlib", reason="password hashing needs the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.api.auth import AuthSettings
from coldgate.cloud.identity.roles import ROLES
from coldgate.cloud.identity.tokens import MACHINE_ROLES
from tests.rig.people import PASSWORD, bearer, person

TOKENS = ApiTokens((("qa", "qa-token-0123456789abcdef"),))
NEW_PASSWORD = "another horse battery staple"
WRONG_PASSWORD = "not the password of anyone"
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: For the tests that try many routes per example.
FEWER = settings(SETTINGS, max_examples=25)
_SERIAL = itertools.count()

# ---------------------------------------------------------------- hostile values

#: Text of every Unicode category but Cs: a lone surrogate in a body is refused by pydantic before
#: any rule the properties model (the regression tests at the end cover it, field by field).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
#: What a person (or a scanner) tries on purpose.
FRAGMENTS = st.sampled_from(
    [
        "", " ", "\x00", "a\x00b", "\x01\x1f\x7f", "\x9b", "\t", "line\nbreak", "\r\n", "\u2028",
        "\u0085", "' OR 1=1 --", "' OR '1'='1", "'; DROP TABLE users; --",
        'robert"); DELETE FROM users;--', "1; SELECT pg_sleep(10)", "dana' --", "admin'/*",
        "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "&lt;b&gt;", "{{7*7}}",
        "${jndi:ldap://x/a}", "%00", "%ff", "\\u0000", "\\ud800", "\ufffd", "\ufeff",
        "\u202etxt.exe", "é", "🧊", "ＡＢＣ", "İ", "ß", "dana", " DANA ", "viewer", "admin",
        "../../etc/passwd", "null", "[]", "{}", "0", "-1", "1e999",
    ]
)  # fmt: skip
#: 1 K to 100 K of one character (up to 1.2 MB as sent: json.dumps escapes the emoji as a pair).
LONG = st.builds(
    lambda n, c: c * n, st.integers(1024, 100_000), st.sampled_from(["a", "é", "🧊", "'", "<", "\x00", " "])
)
HOSTILE_TEXT = st.one_of(TEXT, FRAGMENTS, LONG)
#: JSON that is not text (finite numbers only: NaN and Infinity have their own tests at the end).
NOT_TEXT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT, max_size=2),
)
HOSTILE = st.one_of(HOSTILE_TEXT, NOT_TEXT)
#: For the ``roles`` lists: lists of real roles and hostile text, too many of them, and not lists.
HOSTILE_ROLES = st.one_of(
    st.lists(st.one_of(st.sampled_from(sorted(ROLES)), HOSTILE_TEXT, NOT_TEXT), max_size=20),
    st.lists(st.sampled_from(sorted(ROLES)), max_size=6),
    HOSTILE_TEXT,
    st.none(),
    st.integers(),
    st.dictionaries(TEXT, TEXT, max_size=2),
)
#: For ``expires_in_days``: any integer, finite floats, and the rest.
HOSTILE_DAYS = st.one_of(
    st.integers(), st.integers(-5, 400), st.floats(allow_nan=False, allow_infinity=False), HOSTILE
)

#: Values that may well be fine, so the accepted side of each property is tried too.
FAIR_LOGINS = st.from_regex(r"\s?[A-Za-z0-9][a-z0-9._@-]{0,30}\s?", fullmatch=True)
FAIR_MACHINES = st.from_regex(r"\s?[A-Za-z0-9][a-z0-9._-]{0,30}\s?", fullmatch=True)
FAIR_MACHINE_ROLES = st.lists(st.sampled_from(sorted(MACHINE_ROLES)), min_size=1, max_size=4)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
#: Per text field: (the schema's max_length, the checks' own limit).
_LIMITS = {
    "login": (256, 64),
    "printed_name": (400, 200),
    "email": (400, 254),
    "phone": (64, 32),
    "password": (4096, 1024),
    "label": (400, 200),
    "machine": (128, 64),
}


def _is(role: Any, roles: Any) -> bool:
    return isinstance(role, str) and role in roles


def must_refuse(field: str, value: Any) -> bool:
    """True if ``value`` cannot be accepted for ``field`` by anyone's reading of the rules (the
    endpoint may refuse more: an address without a domain, a taken login)."""
    if field == "roles":
        return not isinstance(value, list) or len(value) > 16 or any(not _is(r, ROLES) for r in value)
    if field == "machine_roles":
        return (
            not isinstance(value, list)
            or not value
            or len(value) > 8
            or any(not _is(r, MACHINE_ROLES) for r in value)
        )
    if field == "expires_in_days":
        if isinstance(value, int) and not isinstance(value, bool):
            return not 1 <= value <= 366
        return value is None or isinstance(value, list | dict)
    if field == "phone" and value is None:
        return False
    if not isinstance(value, str):
        return True
    schema_limit, limit = _LIMITS[field]
    if len(value) > schema_limit:
        return True
    if field == "password":
        return "\x00" in value or not 12 <= len(value) <= limit
    if len(value) > limit or _CONTROL.search(value):
        return True
    if field == "login":
        return not _LOGIN.fullmatch(value.strip().lower())
    return field != "phone" and not value.strip()


# ---------------------------------------------------------------- the client and what it sees


@dataclass(frozen=True)
class World:
    client: TestClient
    admin: dict[str, str]  # root: admin and qa_manager, so users, tokens and the audit trail
    dana: dict[str, str]  # dana: viewer, so her own tokens
    dana_id: str


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    _, root_token = person(engine, "root", ("admin", "qa_manager"))
    dana_id, dana_token = person(engine, "dana", ("viewer",))
    # No lock however many wrong passwords: every refused sign-in here is one user.login_failed
    # and nothing else (the lock is test_users.py's).
    app = create_app(engine, TOKENS, auth=AuthSettings(max_failed_logins=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, bearer(root_token), bearer(dana_token), dana_id)


@dataclass(frozen=True)
class Seen:
    audit_total: int
    users: list[dict[str, Any]]
    tokens: list[dict[str, Any]]


def _get(world: World, path: str) -> Any:
    reply = world.client.get(path, headers=world.admin)
    assert reply.status_code == 200, (path, reply.text)
    return reply.json()


def seen(world: World) -> Seen:
    return Seen(
        _get(world, "/audit?limit=1")["total"],
        _get(world, "/users")["items"],
        _get(world, "/tokens")["items"],
    )


def new_entries(world: World, before: Seen) -> list[dict[str, Any]]:
    """The audit entries appended since ``before``, oldest first."""
    count = _get(world, "/audit?limit=1")["total"] - before.audit_total
    return _get(world, f"/audit?limit={count}")["items"][::-1] if count else []


def send(
    world: World, method: str, path: str, doc: Any = None, *, raw: bytes | None = None,
    headers: dict[str, str] | None = None, content_type: str = "application/json",
) -> Any:  # fmt: skip
    """``doc`` as ``json.dumps`` writes it (or ``raw`` bytes as they are), as the admin by default."""
    body = raw if raw is not None else json.dumps(doc).encode("ascii")
    sent = {"Content-Type": content_type, **(world.admin if headers is None else headers)}
    return world.client.request(method, path, content=body, headers=sent)


def shown(reply: Any) -> str:
    return f"{reply.status_code} {reply.text[:400]}"


def assert_names(reply: Any, *fields: str, where: str = "body") -> list[dict[str, Any]]:
    """A 422 in FastAPI's shape, every error of which names one of ``fields``."""
    assert reply.status_code == 422, shown(reply)
    errors = reply.json()["detail"]
    assert isinstance(errors, list) and errors, shown(reply)
    for error in errors:
        assert set(error) >= {"loc", "msg", "type"}, error
        assert error["loc"][0] == where and error["loc"][1] in fields, (fields, error)
    return errors


def assert_nothing_written(world: World, before: Seen, context: Any) -> None:
    """Users, tokens and the audit trail as ``before``; ``context`` (a reply, or what was sent)
    for the message."""
    told = shown(context) if hasattr(context, "status_code") else repr(context)[:400]
    assert seen(world) == before, ("the refusal wrote something", told)


def assert_failed_login(world: World, before: Seen, reply: Any) -> dict[str, Any]:
    """A 401 without a session, audited as one user.login_failed; the one change besides it is the
    failure count of the user it names (if it names one).  The entry, for further checks."""
    assert reply.status_code == 401, shown(reply)
    assert "set-cookie" not in reply.headers
    [entry] = new_entries(world, before)
    assert entry["action"] == "user.login_failed", entry
    after = seen(world)
    assert after.tokens == before.tokens
    assert [u["id"] for u in after.users] == [u["id"] for u in before.users]
    changed = [(old, new) for old, new in zip(before.users, after.users, strict=True) if old != new]
    if entry["entity_type"] == "user":
        [(old, new)] = changed
        assert new["id"] == entry["entity_id"]
        assert new == {**old, "failed_logins": old["failed_logins"] + 1}
    else:
        assert entry["entity_type"] == "login" and changed == [], (entry, changed)
    return entry


# ---------------------------------------------------------------- POST /auth/login

LOGIN_CASES: list[tuple[str, Any, int, str | None]] = [
    # (what, body, status, the field a 422 names)
    ("login 1 KB", {"login": "a" * 1024, "password": WRONG_PASSWORD}, 422, "login"),
    ("login 100 KB", {"login": "d" * 100_000, "password": WRONG_PASSWORD}, 422, "login"),
    ("login 256 characters", {"login": "a" * 256, "password": WRONG_PASSWORD}, 401, None),
    ("password 1 KB", {"login": "dana", "password": "p" * 1024}, 401, None),
    ("password 4 KB, past the policy", {"login": "dana", "password": "p" * 4096}, 401, None),
    ("password 100 KB", {"login": "dana", "password": "p" * 100_000}, 422, "password"),
    ("empty login", {"login": "", "password": WRONG_PASSWORD}, 401, None),
    ("empty password", {"login": "dana", "password": ""}, 401, None),
    ("both empty", {"login": "", "password": ""}, 401, None),
    ("NUL login", {"login": "dana\x00", "password": PASSWORD}, 401, None),
    ("NUL password", {"login": "dana", "password": PASSWORD + "\x00"}, 401, None),
    ("control characters", {"login": "da\x1bna", "password": "\x01\x02\x7f"}, 401, None),
    ("newline in the login", {"login": "dana\nroot", "password": PASSWORD}, 401, None),
    ("SQL in the login", {"login": "' OR 1=1 --", "password": WRONG_PASSWORD}, 401, None),
    ("SQL in the password", {"login": "dana", "password": "' OR '1'='1' --"}, 401, None),
    ("SQL after a real login", {"login": "dana' --", "password": WRONG_PASSWORD}, 401, None),
    ("HTML in both", {"login": "<script>alert(1)</script>", "password": "<b>x</b>"}, 401, None),
    ("a number for the login", {"login": 42, "password": PASSWORD}, 422, "login"),
    ("a float for the password", {"login": "dana", "password": 4.2}, 422, "password"),
    ("a list for the login", {"login": ["dana"], "password": PASSWORD}, 422, "login"),
    ("null for the password", {"login": "dana", "password": None}, 422, "password"),
    ("an object for the login", {"login": {"$ne": ""}, "password": PASSWORD}, 422, "login"),
    ("true for the password", {"login": "dana", "password": True}, 422, "password"),
    ("an extra field", {"login": "dana", "password": PASSWORD, "admin": True}, 422, "admin"),
    ("no login", {"password": PASSWORD}, 422, "login"),
    ("no password", {"login": "dana"}, 422, "password"),
]


def test_the_issues_hostile_sign_ins(world: World) -> None:
    for what, body, status, field in LOGIN_CASES:
        before = seen(world)
        reply = send(world, "POST", "/auth/login", body, headers={})
        if status == 401:
            entry = assert_failed_login(world, before, reply)
            if len(body["password"]) >= 4:  # the password tried is never kept
                assert body["password"] not in json.dumps(entry, ensure_ascii=False), what
        else:
            assert field is not None
            assert_names(reply, field)
            assert_nothing_written(world, before, (what, reply))
    # No fields at all: both named.
    before = seen(world)
    errors = assert_names(send(world, "POST", "/auth/login", {}, headers={}), "login", "password")
    assert sorted(e["loc"][1] for e in errors) == ["login", "password"]
    assert_nothing_written(world, before, errors)


NOT_JSON = [
    ("a form", b"login=dana&password=x", "application/x-www-form-urlencoded"),
    ("plain words as JSON", b"hello", "application/json"),
    ("plain words", b"hello", "text/plain"),
    ("no body", b"", "application/json"),
    ("cut short", b'{"login": "dana", "pass', "application/json"),
    ("an array", b'["dana", "x"]', "application/json"),
    ("null", b"null", "application/json"),
    ("a string", b'"dana"', "application/json"),
    ("a number", b"1", "application/json"),
    ("a raw NUL in a string", b'{"login": "da\x00na", "password": "x"}', "application/json"),
    ("a raw newline in a string", b'{"login": "da\nna", "password": "x"}', "application/json"),
    ("XML", b"<login>dana</login>", "application/xml"),
    ("a duplicate key", b'{"login": "dana", "login": 1, "password": "x"}', "application/json"),
]


def test_a_body_that_is_no_login_object_is_a_4xx_and_no_attempt(world: World) -> None:
    """Not JSON, or JSON but not an object with login and password: a 422 at loc ["body", ...]
    and nothing audited, there being no attempt.  Bytes that are not UTF-8 are not JSON either."""
    before = seen(world)
    for what, raw, content_type in NOT_JSON:
        reply = send(world, "POST", "/auth/login", raw=raw, headers={}, content_type=content_type)
        assert reply.status_code == 422, (what, shown(reply))
        assert all(e["loc"][0] == "body" for e in reply.json()["detail"]), (what, shown(reply))
    for raw in (
        b'{"login": "\xff\xfe", "password": "x"}',
        b'{"login": "dana", "password": "\xc0\x80"}',
        b"\xfe\xff\x00{",
    ):
        reply = send(world, "POST", "/auth/login", raw=raw, headers={})
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"][0] == "body", (raw, shown(reply))
    assert_nothing_written(world, before, raw)


LOGIN_LIMITS = {"login": 256, "password": 4096}


@SETTINGS
@given(field=st.sampled_from(["login", "password"]), value=HOSTILE)
def test_any_login_or_password_is_a_401_audited_or_a_422_naming_it(
    world: World, field: str, value: Any
) -> None:
    body = (
        {"login": value, "password": WRONG_PASSWORD}
        if field == "login"
        else {"login": "dana", "password": value}
    )
    before = seen(world)
    reply = send(world, "POST", "/auth/login", body, headers={})
    event(f"{field}: {reply.status_code}")
    if isinstance(value, str) and len(value) <= LOGIN_LIMITS[field]:
        entry = assert_failed_login(world, before, reply)
        names_dana = field == "password" or (not _CONTROL.search(value) and value.strip().lower() == "dana")
        assert (entry["entity_id"] == world.dana_id) == names_dana, (value, entry)
    else:
        assert_names(reply, field)
        assert_nothing_written(world, before, reply)


def _parses_into_what_pydantic_refuses_first(raw: bytes) -> bool:
    """True if ``json.loads`` (as FastAPI calls it, on the bytes) would read a lone surrogate or
    NaN/Infinity out of ``raw``: the regression tests at the end cover those.  It decodes bytes in
    the encoding they look like (UTF-8, or UTF-16/32 from the NUL pattern of the first bytes) with
    ``surrogatepass``, so UTF-8-encoded surrogates (ED A0 80...) arrive as lone surrogates."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError:
        return False
    return bool(re.search("[\ud800-\udfff]", text)) or any(w in text for w in ("NaN", "Infinity", "\\u"))


def _inside_a_string(raw: bytes) -> bytes:
    """``raw`` as the bytes of a JSON string's content: quotes and backslashes escaped, so no byte
    leaves the string; everything else (control bytes, invalid UTF-8) as it is."""
    return raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


@SETTINGS
@given(
    field=st.sampled_from(["login", "password"]),
    raw=st.binary(max_size=64),
)
def test_any_bytes_in_the_login_or_password_are_a_4xx(world: World, field: str, raw: bytes) -> None:
    other = b"dana" if field == "password" else WRONG_PASSWORD.encode()
    pair = {field: _inside_a_string(raw), ("password" if field == "login" else "login"): other}
    body = b'{"login": "%s", "password": "%s"}' % (pair["login"], pair["password"])
    assume(not _parses_into_what_pydantic_refuses_first(body))
    before = seen(world)
    reply = send(world, "POST", "/auth/login", raw=body, headers={})
    try:
        raw.decode("utf-8")
        text = True
    except UnicodeDecodeError:
        text = False
    if not text:
        assert reply.status_code == 422, shown(reply)  # not UTF-8, so not JSON
        assert_nothing_written(world, before, reply)
    elif any(b < 0x20 for b in raw):
        # A raw control byte in a JSON string is a JSON syntax error.
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"][0] == "body", shown(reply)
        assert_nothing_written(world, before, reply)
    else:
        assert_failed_login(world, before, reply)


@SETTINGS
@given(raw=st.binary(max_size=200).filter(lambda b: not _parses_into_what_pydantic_refuses_first(b)))
def test_any_bytes_as_the_body_are_a_4xx_and_no_attempt(world: World, raw: bytes) -> None:
    before = seen(world)
    reply = send(world, "POST", "/auth/login", raw=raw, headers={})
    assert reply.status_code == 422, (raw, shown(reply))
    assert_nothing_written(world, before, reply)


# ---------------------------------------------------------------- POST /users


def _new_user(login: str) -> dict[str, Any]:
    return {
        "login": login, "printed_name": "Hostile Tester", "email": f"{login}@example.org",
        "password": PASSWORD, "roles": ["viewer"],
    }  # fmt: skip


#: Where the users routes name a refused role: the body's field (it was "role", the CLI option's name).
USERS_ROLES_NAMES = ("roles",)


@SETTINGS
@given(
    field=st.sampled_from(["login", "printed_name", "email", "phone", "password", "roles"]), data=st.data()
)
def test_a_new_user_with_any_value_is_added_as_sent_or_refused_by_name(
    world: World, field: str, data: st.DataObject
) -> None:
    strategy = {
        "roles": HOSTILE_ROLES,
        "login": st.one_of(HOSTILE, FAIR_LOGINS),
        "email": st.one_of(HOSTILE, st.emails()),
    }.get(field, HOSTILE)
    value = data.draw(strategy, label=field)
    body = {**_new_user(f"h{next(_SERIAL)}"), field: value}
    before = seen(world)
    reply = send(world, "POST", "/users", body)
    event(f"{field}: {reply.status_code}")
    names = USERS_ROLES_NAMES if field == "roles" else (field,)
    if reply.status_code == 422 or must_refuse(field, value):
        assert_names(reply, *names)
        assert_nothing_written(world, before, reply)
        return
    assert reply.status_code == 201, shown(reply)
    added = reply.json()
    after = seen(world)
    assert after.tokens == before.tokens
    assert [u for u in after.users if u["id"] != added["id"]] == before.users
    [entry] = new_entries(world, before)
    assert (entry["action"], entry["entity_id"]) == ("user.add", added["id"])
    stored = {
        "login": lambda v: v.strip().lower(),
        "printed_name": str.strip,
        "email": str.strip,
        "phone": lambda v: (v.strip() or None) if v is not None else None,
        "roles": lambda v: sorted(set(v)),
    }
    if field in stored:
        assert added[field] == stored[field](value), (value, added)
    assert "password_hash" not in added and "$argon2" not in json.dumps(entry)


def test_the_issues_hostile_new_users(world: World) -> None:
    cases: list[tuple[str, Any, tuple[str, ...]]] = [
        ("login", "x" * 100_000, ("login",)),
        ("login", "' OR 1=1 --", ("login",)),
        ("login", "root", ("login",)),  # taken
        ("login", " DANA ", ("login",)),  # taken, as the login check reads it
        ("login", "", ("login",)),
        ("printed_name", "", ("printed_name",)),
        ("printed_name", "a\x00b", ("printed_name",)),
        ("printed_name", "é" * 1024, ("printed_name",)),
        ("email", "<script>alert(1)</script>", ("email",)),
        ("email", "a@b.cd\r\nBcc: x@y.z", ("email",)),
        ("phone", "'; DROP TABLE users; --", ("phone",)),
        ("password", "short", ("password",)),
        ("password", "correct horse\x00battery", ("password",)),
        ("password", "p" * 2048, ("password",)),
        ("roles", ["root"], USERS_ROLES_NAMES),
        ("roles", "admin", USERS_ROLES_NAMES),
        ("roles", [None], USERS_ROLES_NAMES),
        ("roles", ["viewer"] * 17, USERS_ROLES_NAMES),
        ("is_admin", True, ("is_admin",)),  # an extra field
    ]
    for field, value, names in cases:
        before = seen(world)
        reply = send(world, "POST", "/users", {**_new_user(f"h{next(_SERIAL)}"), field: value})
        assert_names(reply, *names)
        assert_nothing_written(world, before, reply)
    for missing in ("login", "printed_name", "email", "password"):
        body = _new_user(f"h{next(_SERIAL)}")
        del body[missing]
        assert_names(send(world, "POST", "/users", body), missing)
    assert_nothing_written(world, before, "the bodies without a field")


# ---------------------------------------------------------------- PUT /users/{login}/roles and password


@SETTINGS
@given(roles=HOSTILE_ROLES)
def test_any_roles_are_set_as_sent_or_refused_by_name(world: World, roles: Any) -> None:
    before = seen(world)
    current = next(u["roles"] for u in before.users if u["id"] == world.dana_id)
    reply = send(world, "PUT", "/users/dana/roles", {"roles": roles})
    event(str(reply.status_code))
    if reply.status_code == 422 or must_refuse("roles", roles) or sorted(set(roles)) == current:
        assert_names(reply, *USERS_ROLES_NAMES)
        assert_nothing_written(world, before, reply)
        return
    assert reply.status_code == 200, shown(reply)
    assert reply.json()["roles"] == sorted(set(roles))
    [entry] = new_entries(world, before)
    assert (entry["action"], entry["entity_id"]) == ("user.roles", world.dana_id)
    after = seen(world)
    assert after.tokens == before.tokens
    assert [{**u, "roles": None} for u in after.users] == [{**u, "roles": None} for u in before.users]


@SETTINGS
@given(password=HOSTILE)
def test_any_new_password_is_set_or_refused_by_name(world: World, password: Any) -> None:
    before = seen(world)
    reply = send(world, "POST", "/users/dana/password", {"password": password})
    event(str(reply.status_code))
    if reply.status_code == 422 or must_refuse("password", password):
        assert_names(reply, "password")
        assert_nothing_written(world, before, reply)
        return
    assert reply.status_code == 200, shown(reply)
    [entry] = new_entries(world, before)
    assert (entry["action"], entry["entity_id"]) == ("user.reset_password", world.dana_id)
    after = seen(world)
    assert after.tokens == before.tokens
    moment = "password_changed_at"
    assert [{**u, moment: None} for u in after.users] == [{**u, moment: None} for u in before.users]


def test_hostile_roles_and_passwords_by_example(world: World) -> None:
    before = seen(world)
    for body, names in [
        ({"roles": ["admin' OR 1=1 --"]}, USERS_ROLES_NAMES),
        ({"roles": ["<script>"] * 3}, USERS_ROLES_NAMES),
        ({"roles": ["viewer"]}, USERS_ROLES_NAMES),  # what she has already
        ({"roles": [1, 2]}, ("roles",)),
        ({"roles": None}, ("roles",)),
        ({}, ("roles",)),
        ({"roles": ["qa"], "login": "root"}, ("login",)),  # an extra field, not a second target
    ]:
        assert_names(send(world, "PUT", "/users/dana/roles", body), *names)
    for body, name in [
        ({"password": "\x00" * 20}, "password"),
        ({"password": "x" * 100_000}, "password"),
        ({"password": ""}, "password"),
        ({"password": ["correct horse battery"]}, "password"),
        ({"password": NEW_PASSWORD, "login": "root"}, "login"),
        ({}, "password"),
    ]:
        assert_names(send(world, "POST", "/users/dana/password", body), name)
    # Nobody changes their own roles, however they spell their login.
    assert_names(send(world, "PUT", "/users/%20ROOT%20/roles", {"roles": ["viewer"]}), "login", where="path")
    assert_nothing_written(world, before, "the examples above")


# ---------------------------------------------------------------- POST /tokens/machine and /auth/tokens


def _machine(**override: Any) -> dict[str, Any]:
    return {
        "machine": "erp",
        "roles": ["viewer"],
        "label": "hostile tests",
        "expires_in_days": 30,
        **override,
    }


def _assert_token_made(world: World, before: Seen, reply: Any) -> dict[str, Any]:
    assert reply.status_code == 201, shown(reply)
    made = reply.json()
    after = seen(world)
    assert after.users == before.users
    assert [t for t in after.tokens if t["id"] != made["id"]] == before.tokens
    [entry] = new_entries(world, before)
    assert (entry["action"], entry["entity_id"]) == ("token.create", made["id"])
    return next(t for t in after.tokens if t["id"] == made["id"])


@SETTINGS
@given(field=st.sampled_from(["machine", "roles", "label", "expires_in_days"]), data=st.data())
def test_any_machine_token_value_is_used_as_sent_or_refused_by_name(
    world: World, field: str, data: st.DataObject
) -> None:
    strategy = {
        "machine": st.one_of(HOSTILE, FAIR_MACHINES),
        "roles": st.one_of(HOSTILE_ROLES, FAIR_MACHINE_ROLES),
        "expires_in_days": HOSTILE_DAYS,
    }.get(field, HOSTILE)
    value = data.draw(strategy, label=field)
    before = seen(world)
    reply = send(world, "POST", "/tokens/machine", _machine(**{field: value}))
    event(f"{field}: {reply.status_code}")
    if reply.status_code == 422 or must_refuse("machine_roles" if field == "roles" else field, value):
        assert_names(reply, field)
        assert_nothing_written(world, before, reply)
        return
    token = _assert_token_made(world, before, reply)
    expected = {
        "machine": lambda v: v.strip().lower(),
        "label": str.strip,
        "roles": lambda v: sorted(set(v)),
    }
    if field in expected:
        assert token[field] == expected[field](value), (value, token)


@SETTINGS
@given(field=st.sampled_from(["label", "expires_in_days"]), data=st.data())
def test_any_own_token_value_is_used_as_sent_or_refused_by_name(
    world: World, field: str, data: st.DataObject
) -> None:
    value = data.draw(HOSTILE_DAYS if field == "expires_in_days" else HOSTILE, label=field)
    body = {"label": "my script", "expires_in_days": 7, field: value}
    before = seen(world)
    reply = send(world, "POST", "/auth/tokens", body, headers=world.dana)
    event(f"{field}: {reply.status_code}")
    if reply.status_code == 422 or must_refuse(field, value):
        assert_names(reply, field)
        assert_nothing_written(world, before, reply)
        return
    token = _assert_token_made(world, before, reply)
    assert token["user_id"] == world.dana_id and token["machine"] is None
    if field == "label":
        assert token["label"] == value.strip()


def test_hostile_tokens_by_example(world: World) -> None:
    before = seen(world)
    for override, name in [
        ({"machine": "' OR 1=1 --"}, "machine"),
        ({"machine": "x" * 100_000}, "machine"),
        ({"machine": ""}, "machine"),
        ({"machine": None}, "machine"),
        ({"roles": []}, "roles"),
        ({"roles": ["admin"]}, "roles"),  # a machine decides nothing
        ({"roles": ["viewer\x00"]}, "roles"),
        ({"roles": ["<script>"]}, "roles"),
        ({"roles": ["viewer"] * 9}, "roles"),
        ({"label": ""}, "label"),
        ({"label": "\x1b[2J"}, "label"),
        ({"label": "l" * 1024}, "label"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 367}, "expires_in_days"),
        ({"expires_in_days": 10**40}, "expires_in_days"),
        ({"expires_in_days": 1.5}, "expires_in_days"),
        ({"expires_in_days": "forever"}, "expires_in_days"),
        ({"expires_in_days": None}, "expires_in_days"),
        ({"secret": "mine"}, "secret"),
    ]:
        assert_names(send(world, "POST", "/tokens/machine", _machine(**override)), name)
        if "machine" not in override and "roles" not in override:
            own = {"label": "mine", **override}
            assert_names(send(world, "POST", "/auth/tokens", own, headers=world.dana), name)
    assert_names(send(world, "POST", "/tokens/machine", {"label": "x"}), "machine", "roles")
    assert_names(send(world, "POST", "/auth/tokens", {}, headers=world.dana), "label")
    assert_nothing_written(world, before, "the examples above")


# ---------------------------------------------------------------- {login} and {token_id}

LOGIN_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/users/{}", None),
    ("POST", "/users/{}/disable", None),
    ("POST", "/users/{}/unlock", None),
    ("PUT", "/users/{}/roles", {"roles": ["qa"]}),
    ("POST", "/users/{}/password", {"password": NEW_PASSWORD}),
]
TOKEN_ROUTES: list[tuple[str, str, Any]] = [
    ("DELETE", "/tokens/{}", None),
    ("DELETE", "/auth/tokens/{}", None),
]


def _escape(value: str) -> str:
    """Every byte of ``value``'s UTF-8 percent-escaped (lone surrogates as the bytes of their code
    points, as a careless encoder sends them); dots too, so no client folds a ``..`` segment."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="").replace(".", "%2E")


def _unstorable(value: str) -> bool:
    return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def _try_path_value(world: World, value: str) -> None:
    for routes, name in ((LOGIN_ROUTES, "login"), (TOKEN_ROUTES, "token_id")):
        for method, template, body in routes:
            path = template.format(_escape(value))
            reply = (
                send(world, method, path, body)
                if body is not None
                else world.client.request(method, path, headers=world.admin)
            )
            if "/" in value:  # another path, which some route may or may not serve
                assert reply.status_code in (404, 405, 422), (method, path, shown(reply))
                continue
            assert reply.status_code in (404, 422), (method, path, shown(reply))
            if reply.status_code == 422 or _unstorable(value):
                assert_names(reply, name, where="path")


PATH_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), min_size=1, max_size=40),  # every category
    FRAGMENTS.filter(bool),
    st.builds(lambda n, c: c * n, st.integers(65, 5000), st.sampled_from(["a", "é", "%", "\x00", "\ud800"])),
).filter(lambda v: v.strip().lower() not in ("root", "dana"))


@SETTINGS
@given(value=PATH_TEXT)
def test_any_login_or_token_id_in_the_path_is_a_404_or_a_422_naming_it(world: World, value: str) -> None:
    before = seen(world)
    _try_path_value(world, value)
    assert_nothing_written(world, before, value)


@FEWER
@given(raw=st.binary(min_size=1, max_size=40))
def test_any_bytes_in_the_path_are_a_404_or_a_422_naming_it(world: World, raw: bytes) -> None:
    before = seen(world)
    for routes, name in ((LOGIN_ROUTES, "login"), (TOKEN_ROUTES, "token_id")):
        for method, template, body in routes:
            path = template.format(quote(raw, safe="").replace(".", "%2E"))
            reply = (
                send(world, method, path, body)
                if body is not None
                else world.client.request(method, path, headers=world.admin)
            )
            if b"/" in raw:
                # Another path, which another route may serve: "/users/%2F" is "/users//", redirected to
                # the list (hypothesis found it).  Whatever answers, nothing is written (checked below).
                assert reply.status_code in (200, 404, 405, 422), (method, path, shown(reply))
                continue
            assert reply.status_code in (404, 405, 422), (method, path, shown(reply))
            if reply.status_code != 404:
                assert_names(reply, name, where="path")
    assert_nothing_written(world, before, raw)


def test_the_issues_hostile_path_values(world: World) -> None:
    before = seen(world)
    for value in (
        "\x00",
        "dana\x00",
        "\ud800",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "..",
        ".",
        "x" * 20_000,  # httpx refuses URLs past 64 KiB
    ):
        _try_path_value(world, value)
    for raw in ("%ff", "dana%ff", "%C0%80", "%ED%A0%80", "%25", "%2e%2e"):
        for routes, name in ((LOGIN_ROUTES, "login"), (TOKEN_ROUTES, "token_id")):
            for method, template, body in routes:
                reply = send(world, method, template.format(raw), body)
                assert_names(reply, name, where="path")
    # Well-formed but unknown: 404, not 422.
    assert send(world, "DELETE", "/tokens/t-000000000000").status_code == 404
    assert send(world, "DELETE", "/auth/tokens/t-000000000000", headers=world.dana).status_code == 404
    assert send(world, "POST", "/users/nobody/disable").status_code == 404
    assert_nothing_written(world, before, "the examples above")


# ---------------------------------------------------------------- hostile credentials

SIGNED_IN_ROUTES = [
    ("GET", "/auth/me"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/tokens"),
    ("POST", "/auth/tokens"),
    ("DELETE", "/auth/tokens/t-000000000000"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/tokens/machine"),
]
#: Header bytes a client can send at all (no CR, LF or NUL, which no HTTP server lets through).
HEADER_BYTES = st.binary(max_size=120).filter(lambda b: not set(b) & {0, 10, 13})


@FEWER
@given(token=st.one_of(HEADER_BYTES, st.builds(lambda b: b"cg_" + b, HEADER_BYTES)), cookie=HEADER_BYTES)
def test_any_bearer_token_or_session_cookie_is_a_401(world: World, token: bytes, cookie: bytes) -> None:
    """Who is asking is judged before any body: a stranger with junk credentials hears 401."""
    before = seen(world)
    for method, path in SIGNED_IN_ROUTES:
        for headers in (
            {"Authorization": b"Bearer " + token.strip()},
            {"Cookie": b"coldgate_session=" + cookie, "X-CSRF-Token": cookie.strip()},
        ):
            reply = world.client.request(method, path, headers=headers, content=b"{}")
            assert reply.status_code == 401, (method, path, headers, shown(reply))
    assert_nothing_written(world, before, (token, cookie))


# ---------------------------------------------------------------- regressions
#
# Each is about how a refusal is answered, before any query, so these run on one SQLite database
# for the module (a world per case on both dialects would cost a minute of set-up).  The first
# three were 500s (FastAPI's 422 echoed values JSON cannot carry) or named the wrong field, until
# cloud/api/validation_errors.py and the "roles" field name; the not-UTF-8 body was a 400 that
# named nothing.


@pytest.fixture(scope="module")
def one_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from coldgate.cloud.db import migrate
    from coldgate.cloud.db.engine import make_engine

    url = f"sqlite:///{tmp_path_factory.mktemp('identity-hostile') / 'cloud.sqlite3'}"
    migrate(url)
    engine = make_engine(url, writer=True)
    _, root_token = person(engine, "root", ("admin", "qa_manager"))
    dana_id, dana_token = person(engine, "dana", ("viewer",))
    app = create_app(engine, TOKENS, auth=AuthSettings(max_failed_logins=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, bearer(root_token), bearer(dana_token), dana_id)
    engine.dispose()


S = "\ud800"
SURROGATE_CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    # (what, method, path, body, the field it must name)
    ("login: login", "POST", "/auth/login", {"login": S, "password": WRONG_PASSWORD}, "login"),
    (
        "login: password",
        "POST",
        "/auth/login",
        {"login": "dana", "password": "\udfff" + PASSWORD},
        "password",
    ),
    ("login: long login", "POST", "/auth/login", {"login": S * 300, "password": WRONG_PASSWORD}, "login"),
    ("login: extra field's name", "POST", "/auth/login", {S: 1, "login": "dana", "password": "x"}, ""),
    ("login: a list", "POST", "/auth/login", {"login": [S], "password": WRONG_PASSWORD}, "login"),
    ("users: login", "POST", "/users", {**_new_user("s1"), "login": S + "x"}, "login"),
    (
        "users: printed_name",
        "POST",
        "/users",
        {**_new_user("s2"), "printed_name": "Ann " + S},
        "printed_name",
    ),
    ("users: email", "POST", "/users", {**_new_user("s3"), "email": S + "@example.org"}, "email"),
    ("users: phone", "POST", "/users", {**_new_user("s4"), "phone": S}, "phone"),
    ("users: password", "POST", "/users", {**_new_user("s5"), "password": S * 12}, "password"),
    ("users: 17 roles", "POST", "/users", {**_new_user("s6"), "roles": [S] * 17}, "roles"),
    ("roles: not a list", "PUT", "/users/dana/roles", {"roles": S}, "roles"),
    ("roles: 17 of them", "PUT", "/users/dana/roles", {"roles": [S] * 17}, "roles"),
    ("password reset", "POST", "/users/dana/password", {"password": S * 12}, "password"),
    ("machine: machine", "POST", "/tokens/machine", _machine(machine=S), "machine"),
    ("machine: label", "POST", "/tokens/machine", _machine(label=S), "label"),
    ("own token: label", "POST", "/auth/tokens", {"label": S}, "label"),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "field"), SURROGATE_CASES, ids=[c[0] for c in SURROGATE_CASES]
)
def test_a_lone_surrogate_in_a_body_is_refused_by_name(
    one_world: World, what: str, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = seen(one_world)
    reply = send(one_world, method, path, body, headers=one_world.dana if path == "/auth/tokens" else None)
    if path == "/auth/login" and reply.status_code == 401:
        assert_failed_login(one_world, before, reply)
        return
    if field:
        assert_names(reply, field)
    else:  # an extra field, whose name cannot be echoed as it came
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"][0] == "body", shown(reply)
    assert_nothing_written(one_world, before, reply)


NAN_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("/auth/login", "login", {"login": float("nan"), "password": "x"}, "login"),
    ("/auth/login", "password", {"login": "dana", "password": float("inf")}, "password"),
    ("/users", "roles", {**_new_user("n1"), "roles": [float("nan")]}, "roles"),
    ("/users", "phone", {**_new_user("n2"), "phone": float("-inf")}, "phone"),
    ("/auth/tokens", "expires_in_days", {"label": "x", "expires_in_days": float("nan")}, "expires_in_days"),
    ("/tokens/machine", "expires_in_days", _machine(expires_in_days=float("inf")), "expires_in_days"),
]


@pytest.mark.parametrize(
    ("path", "what", "body", "field"), NAN_CASES, ids=[f"{c[0]} {c[1]}" for c in NAN_CASES]
)
def test_nan_and_infinity_are_refused_by_name(
    one_world: World, path: str, what: str, body: dict[str, Any], field: str
) -> None:
    before = seen(one_world)
    reply = send(one_world, "POST", path, body, headers=one_world.dana if path == "/auth/tokens" else None)
    assert_names(reply, field)
    assert_nothing_written(one_world, before, reply)


@pytest.mark.parametrize(("method", "path"), [("POST", "/users"), ("PUT", "/users/dana/roles")])
def test_a_refused_role_names_the_roles_field(one_world: World, method: str, path: str) -> None:
    body = {**_new_user("r1"), "roles": ["root"]} if path == "/users" else {"roles": ["root"]}
    [error] = assert_names(send(one_world, method, path, body), *USERS_ROLES_NAMES)
    assert error["loc"] == ["body", "roles"], error


def test_a_body_that_is_not_utf8_is_a_422_like_any_unparsable_body(one_world: World) -> None:
    reply = send(one_world, "POST", "/auth/login", raw=b'{"login": "\xff", "password": "x"}', headers={})
    assert reply.status_code == 422, shown(reply)
    [error] = reply.json()["detail"]
    assert error["loc"] == ["body", 11] and "0xff at 11" in error["msg"], error


ENCODED_SURROGATES = [
    ("in the login", b'{"login": "\xed\xa0\x80", "password": "x"}', "login"),
    ("in the password", b'{"login": "dana", "password": "\xed\xbf\xbfcorrect horse"}', "password"),
]


@pytest.mark.parametrize(("what", "raw", "field"), ENCODED_SURROGATES, ids=[c[0] for c in ENCODED_SURROGATES])
def test_an_encoded_surrogate_in_the_body_is_a_4xx(
    one_world: World, what: str, raw: bytes, field: str
) -> None:
    """ED A0 80 is no UTF-8 (a surrogate cannot be encoded), so the body is not JSON."""
    before = seen(one_world)
    reply = send(one_world, "POST", "/auth/login", raw=raw, headers={})
    assert_names(reply, field)
    assert_nothing_written(one_world, before, reply)
