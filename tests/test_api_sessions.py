"""Signing in and out through the API: the cookie's flags, CSRF, idle and absolute timeouts,
lockout after the configured failures, and tokens that stop when they expire, are revoked, or their
person is locked or disabled.  Every step is read back from the audit trail."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.api.auth import CSRF_HEADER, SESSION_COOKIE, AuthSettings
from coldgate.cloud.db.models import ApiToken, AuditEntry, BrowserSession
from coldgate.cloud.identity.sessions import SessionLimits
from tests.rig.people import PASSWORD, bearer, person

TOKENS = ApiTokens((("erp", "legacy-token-0123456789abcdef"),))
SETTINGS = AuthSettings(max_failed_logins=3, sessions=SessionLimits())


@pytest.fixture
def app_engine(engine: Engine) -> Engine:
    person(engine, "quinn", ("qa_manager",))
    return engine


@pytest.fixture
def client(app_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(app_engine, TOKENS, auth=SETTINGS), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin(app_engine: Engine) -> dict[str, str]:
    return bearer(person(app_engine, "ada", ("admin", "qa_manager"))[1])


def sign_in(client: TestClient, login: str = "quinn", password: str = PASSWORD) -> str:
    reply = client.post("/auth/login", json={"login": login, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()["csrf_token"]


def actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def test_sign_in_sets_a_strict_httponly_cookie_and_works(client: TestClient, app_engine: Engine) -> None:
    reply = client.post(
        "/auth/login", json={"login": "Quinn", "password": PASSWORD}, headers={"X-Request-ID": "r-1"}
    )
    assert reply.status_code == 200 and reply.headers["X-Request-ID"] == "r-1"
    body = reply.json()
    assert (body["login"], body["roles"], body["idle_timeout_s"]) == ("quinn", ["qa_manager"], 900)
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http here; see the TLS test
    me = client.get("/auth/me").json()
    assert (me["via"], me["login"], me["name"]) == ("session", "quinn", "Quinn Tester")
    assert client.head("/auth/me").status_code == 405  # no route answers HEAD, so none is left unchecked
    assert "audit.read" in me["permissions"]
    [started] = client.get("/audit", params={"action": "session.start"}).json()["items"]
    [signed_in] = client.get("/audit", params={"action": "user.login"}).json()["items"]
    for entry in (started, signed_in):
        assert (entry["request_id"], entry["client"], entry["actor_name"]) == (
            "r-1",
            "testclient",
            "Quinn Tester",
        )
    # A caller's id that is not plain is replaced, not stored.
    odd = client.get("/auth/me", headers={"X-Request-ID": "x<script>alert(1)</script>"})
    assert len(odd.headers["X-Request-ID"]) == 32 and "<" not in odd.headers["X-Request-ID"]
    # The database keeps only the cookie's hash.
    with app_engine.connect() as conn:
        stored = conn.execute(select(BrowserSession.cookie_sha256)).scalars().all()
    assert len(stored) == 1 and client.cookies[SESSION_COOKIE] not in stored


def test_over_tls_the_cookie_is_secure(app_engine: Engine) -> None:
    app = create_app(app_engine, TOKENS, auth=SETTINGS)
    with TestClient(app, base_url="https://testserver") as tls:
        reply = tls.post("/auth/login", json={"login": "quinn", "password": PASSWORD})
    flags = {part.strip().lower() for part in reply.headers["set-cookie"].split(";")}
    assert "secure" in flags


def test_changes_with_a_cookie_need_the_csrf_token(client: TestClient) -> None:
    csrf = sign_in(client)
    body = {"label": "laptop", "expires_in_days": 7}
    refused = client.post("/auth/tokens", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    for bad in (csrf[:-1] + "x", "caf\u00e9".encode(), b"\xff\xfe", ""):
        wrong = client.post("/auth/tokens", json=body, headers={CSRF_HEADER: bad})
        assert wrong.status_code == 403, bad
    made = client.post("/auth/tokens", json=body, headers={CSRF_HEADER: csrf})
    assert made.status_code == 201
    # A form post carries it as a field.
    form = client.post("/auth/logout", data={"csrf_token": csrf})
    assert form.status_code == 204
    # Reads need no token; a bearer caller needs none either (no cookie rides along).
    assert client.get("/auth/me").status_code == 401


def test_logout_ends_the_session_for_good(client: TestClient, app_engine: Engine) -> None:
    csrf = sign_in(client)
    cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept by someone
    again = client.get("/auth/me")
    assert again.status_code == 401 and "signed out (logout)" in again.json()["detail"]
    assert actions(app_engine)[-2:] == ["session.start", "user.logout"] or "user.logout" in actions(
        app_engine
    )


def _age(engine: Engine, **values: datetime.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(BrowserSession).values(**values))


@pytest.mark.parametrize(
    ("column", "why"),
    [("last_seen_at", "idle timeout"), ("expires_at", "absolute timeout")],
)
def test_an_expired_session_is_refused_and_recorded(
    client: TestClient, app_engine: Engine, column: str, why: str
) -> None:
    sign_in(client)
    assert client.get("/auth/me").status_code == 200
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16)
    _age(app_engine, **{column: long_ago})
    reply = client.get("/auth/me")
    assert reply.status_code == 401 and why in reply.json()["detail"]
    with app_engine.connect() as conn:
        ended = conn.execute(select(BrowserSession.ended_reason)).scalar_one()
        last = conn.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert ended == why
    assert (last.action, last.reason) == ("session.end", why)
    # Refused for good, not only until the clock is set back.
    _age(app_engine, last_seen_at=datetime.datetime.now(datetime.UTC))
    assert client.get("/auth/me").status_code == 401


def test_lockout_after_the_configured_failures(
    client: TestClient, app_engine: Engine, admin: dict[str, str]
) -> None:
    for _ in range(SETTINGS.max_failed_logins):
        reply = client.post("/auth/login", json={"login": "quinn", "password": "wrong password!"})
        assert reply.status_code == 401
    # Locked: the right password is refused too, with the same answer as a wrong one.
    right = client.post("/auth/login", json={"login": "quinn", "password": PASSWORD})
    unknown = client.post("/auth/login", json={"login": "nosuchuser", "password": PASSWORD})
    assert right.status_code == unknown.status_code == 401
    assert right.json() == unknown.json()
    assert "set-cookie" not in right.headers
    trail = client.get("/audit", params={"entity_type": "user", "action": "user."}, headers=admin).json()
    seen = [entry["action"] for entry in reversed(trail["items"])]
    assert seen.count("user.login_failed") == 3 and "user.lock" in seen and "user.login_refused" in seen
    assert client.get("/users/quinn", headers=admin).json()["locked"] is True
    # An admin unlocks; the right password works again.
    assert client.post("/users/quinn/unlock", headers=admin).status_code == 200
    sign_in(client)


def test_a_locked_or_disabled_person_cannot_use_their_token(
    client: TestClient, app_engine: Engine, admin: dict[str, str]
) -> None:
    _, token = person(app_engine, "tom", ("viewer",))
    assert client.get("/gateways", headers=bearer(token)).status_code == 200
    for _ in range(SETTINGS.max_failed_logins):
        client.post("/auth/login", json={"login": "tom", "password": "not the password"})
    locked = client.get("/gateways", headers=bearer(token))
    assert locked.status_code == 401 and "locked" in locked.json()["detail"]
    client.post("/users/tom/unlock", headers=admin)
    assert client.get("/gateways", headers=bearer(token)).status_code == 200
    assert client.post("/users/tom/disable", headers=admin).status_code == 200
    disabled = client.get("/gateways", headers=bearer(token))
    assert disabled.status_code == 401 and "disabled" in disabled.json()["detail"]


def test_a_disabled_persons_session_ends(client: TestClient, admin: dict[str, str]) -> None:
    sign_in(client)
    assert client.post("/users/quinn/disable", headers=admin).status_code == 200
    reply = client.get("/auth/me")
    assert reply.status_code == 401 and "user disabled" in reply.json()["detail"]


def test_tokens_shown_once_revocable_and_expiring(
    client: TestClient, app_engine: Engine, admin: dict[str, str]
) -> None:
    _, token = person(app_engine, "tess", ("viewer",))
    made = client.post("/auth/tokens", json={"label": "script", "expires_in_days": 1}, headers=bearer(token))
    assert made.status_code == 201
    second = made.json()
    listed = client.get("/auth/tokens", headers=bearer(token)).json()["items"]
    assert {t["id"] for t in listed} >= {second["id"]} and all("token" not in t for t in listed)
    assert second["token"] not in str(listed)
    assert client.get("/auth/me", headers=bearer(second["token"])).json()["token_id"] == second["id"]
    # Expired: refused with the date.
    with app_engine.begin() as conn:
        conn.execute(
            update(ApiToken)
            .where(ApiToken.id == second["id"])
            .values(expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1))
        )
    expired = client.get("/auth/me", headers=bearer(second["token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    # Revoked by its owner: refused; someone else's token reads as not found.
    first_id = next(t["id"] for t in listed if t["id"] != second["id"])
    assert client.delete(f"/auth/tokens/{first_id}", headers=admin).status_code == 404
    assert client.delete(f"/auth/tokens/{first_id}", headers=bearer(token)).status_code == 200
    revoked = client.get("/auth/me", headers=bearer(token))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    trail = client.get("/audit", params={"entity_type": "api_token"}, headers=admin).json()["items"]
    assert {"token.create", "token.revoke"} <= {e["action"] for e in trail}
    assert all(second["token"] not in str(e) for e in trail)


def test_machine_tokens_hold_only_roles_that_decide_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"machine": "erp-link", "roles": ["qa"], "label": "ERP", "expires_in_days": 30}
    refused = client.post("/tokens/machine", json=body, headers=admin)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "roles"]
    made = client.post("/tokens/machine", json={**body, "roles": ["viewer"]}, headers=admin).json()
    me = client.get("/auth/me", headers=bearer(made["token"])).json()
    assert (me["via"], me["name"], me["user_id"]) == ("machine", "machine erp-link", None)
    assert client.get("/users", headers=bearer(made["token"])).status_code == 403
    assert client.post("/auth/tokens", json={"label": "x"}, headers=bearer(made["token"])).status_code == 403
    assert client.delete(f"/tokens/{made['id']}", headers=admin).status_code == 200
    assert client.get("/auth/me", headers=bearer(made["token"])).status_code == 401


def test_the_old_tokens_file_still_reads_and_writes_nothing(client: TestClient) -> None:
    legacy = bearer("legacy-token-0123456789abcdef")
    assert client.get("/gateways", headers=legacy).status_code == 200
    me = client.get("/auth/me", headers=legacy).json()
    assert (me["via"], me["roles"]) == ("tokens_file", ["viewer"])
    assert client.get("/audit", headers=legacy).status_code == 403
    assert client.post("/auth/tokens", json={"label": "x"}, headers=legacy).status_code == 403


def test_users_through_the_api_are_audited_with_the_request(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"login": "nina", "printed_name": "Nina Novak", "email": "nina@example.org", "roles": ["qa"],
            "password": "a long enough passphrase"}  # fmt: skip
    made = client.post("/users", json=body, headers={**admin, "X-Request-ID": "req-42"})
    assert made.status_code == 201 and made.json()["roles"] == ["qa"]
    again = client.post("/users", json=body, headers=admin)
    assert again.status_code == 422 and again.json()["detail"][0]["loc"] == ["body", "login"]
    short = client.post("/users/nina/password", json={"password": "short"}, headers=admin)
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "password"]
    roles = client.put("/users/nina/roles", json={"roles": ["qa", "viewer"]}, headers=admin)
    assert roles.json()["roles"] == ["qa", "viewer"]
    own = client.put("/users/ada/roles", json={"roles": ["admin"]}, headers=admin)
    assert own.status_code == 422 and "own roles" in own.json()["detail"][0]["msg"]
    entry = client.get("/audit", params={"action": "user.add", "entity_id": made.json()["id"]}, headers=admin)
    [added] = entry.json()["items"]
    assert (added["actor_name"], added["after"]["login"]) == ("Ada Tester", "nina")
    assert added["request_id"] == "req-42" and added["client"] == "testclient"
    assert "password_hash" not in added["after"]
