"""People on both dialects: add, list, disable, unlock, roles, reset, the login check, and the
audit entry each of them writes in the same transaction."""

from __future__ import annotations

import datetime
import itertools
import json
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")
pytest.importorskip("pwdlib", reason="password hashing needs the [cloud] extra")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from coldgate.cloud.audit.log import Actor, verify
from coldgate.cloud.db.models import AuditEntry, User
from coldgate.cloud.identity import users as users_module
from coldgate.cloud.identity.users import (
    MAX_FAILED_LOGINS,
    UserInputError,
    add_user,
    check_login,
    disable_user,
    find_user,
    list_users,
    reset_password,
    set_roles,
    unlock_user,
)

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
CLI = Actor("tester (coldgate CLI)")
PASSWORD = "correct horse battery"


def add(engine: Engine, login: str = "alice", **kwargs: Any) -> str:
    values: dict[str, Any] = {
        "login": login,
        "printed_name": "Alice Example",
        "email": f"{login}@example.com",
        "password": PASSWORD,
        "by": CLI,
        "now": NOW,
        "roles": ["qa"],
    }
    values.update(kwargs)
    with engine.begin() as conn:
        return add_user(conn, **values)


def audit(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(AuditEntry).order_by(AuditEntry.seq)).all()


def login(engine: Engine, name: str, password: str) -> Any:
    with engine.begin() as conn:
        return check_login(conn, name, password, now=NOW)


def user(engine: Engine, name: str = "alice") -> dict[str, Any]:
    with engine.connect() as conn:
        return find_user(conn, name)


def test_add_and_list(engine: Engine) -> None:
    user_id = add(engine, "Alice", phone="+41 44 123 45 67", roles=["qa", "viewer"])
    assert user_id.startswith("u-") and len(user_id) == 14
    add(engine, "bob", roles=[])
    with engine.connect() as conn:
        listed = list_users(conn)
    assert [(u["login"], u["roles"]) for u in listed] == [("alice", ["qa", "viewer"]), ("bob", [])]
    alice = listed[0]
    assert alice["active"] and not alice["locked"] and alice["failed_logins"] == 0
    assert alice["phone"] == "+41 44 123 45 67"
    assert "password_hash" not in alice
    entries = audit(engine)
    first = entries[0]
    assert (first.action, first.entity_type, first.entity_id, first.actor_name) == (
        "user.add", "user", user_id, "tester (coldgate CLI)",
    )  # fmt: skip
    after = json.loads(entries[0].after)
    assert after["login"] == "alice" and after["roles"] == ["qa", "viewer"]
    assert "password_hash" not in after and PASSWORD not in entries[0].after
    with engine.connect() as conn:
        assert verify(conn) == (2, None)


def test_hash_is_argon2_and_not_the_password(engine: Engine) -> None:
    add(engine)
    with engine.connect() as conn:
        stored = conn.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert login(engine, "alice", PASSWORD).ok
    assert not login(engine, "alice", PASSWORD + "x").ok


def test_login_ok_and_case(engine: Engine) -> None:
    user_id = add(engine)
    result = login(engine, "ALICE", PASSWORD)
    assert result.ok and result.user_id == user_id
    assert audit(engine)[-1].action == "user.login"


def test_lockout_after_five_failures_and_unlock(engine: Engine) -> None:
    user_id = add(engine)
    for attempt in range(1, MAX_FAILED_LOGINS + 1):
        result = login(engine, "alice", "wrong password!!")
        assert not result.ok and result.reason == "wrong password"
        assert result.locked_now == (attempt == MAX_FAILED_LOGINS)
    assert user(engine)["locked"] and user(engine)["failed_logins"] == MAX_FAILED_LOGINS
    refused = login(engine, "alice", PASSWORD)
    assert (refused.ok, refused.reason) == (False, "locked")
    actions = [e.action for e in audit(engine) if e.entity_id == user_id]
    assert actions == ["user.add", *["user.login_failed"] * 5, "user.lock", "user.login_refused"]
    with engine.begin() as conn:
        unlock_user(conn, "alice", by=CLI, now=NOW)
    assert not user(engine)["locked"] and user(engine)["failed_logins"] == 0
    assert login(engine, "alice", PASSWORD).ok
    with engine.begin() as conn, pytest.raises(UserInputError, match="login: 'alice' is not locked"):
        unlock_user(conn, "alice", by=CLI, now=NOW)


def test_success_resets_the_failure_count(engine: Engine) -> None:
    add(engine)
    for _ in range(MAX_FAILED_LOGINS - 1):
        login(engine, "alice", "nope nope nope")
    assert login(engine, "alice", PASSWORD).ok
    assert user(engine)["failed_logins"] == 0
    assert not login(engine, "alice", "nope nope nope").locked_now


def test_disabled_user_refused_and_login_never_reused(engine: Engine) -> None:
    add(engine)
    with engine.begin() as conn:
        disable_user(conn, "alice", by=CLI, now=NOW)
    assert not user(engine)["active"] and user(engine)["disabled_at"] is not None
    assert login(engine, "alice", PASSWORD).reason == "disabled"
    with pytest.raises(UserInputError, match=r"login: 'alice' is taken \(logins are never reused"):
        add(engine, "alice")
    with engine.begin() as conn, pytest.raises(UserInputError, match="already disabled"):
        disable_user(conn, "alice", by=CLI, now=NOW)


def test_unknown_login_is_audited(engine: Engine) -> None:
    result = login(engine, "nobody", PASSWORD)
    assert (result.ok, result.reason) == (False, "unknown")
    last = audit(engine)[-1]
    assert (last.action, last.entity_type, last.entity_id) == ("user.login_failed", "login", "nobody")


def test_roles_and_no_self_change(engine: Engine) -> None:
    admin_id = add(engine, "root", roles=["admin"])
    add(engine)
    admin = Actor("Root Admin", admin_id)
    with engine.begin() as conn:
        set_roles(conn, "alice", ["qa_manager", "viewer"], by=admin, now=NOW)
    assert user(engine)["roles"] == ["qa_manager", "viewer"]
    last = audit(engine)[-1]
    assert last.action == "user.roles" and last.actor_id == admin_id
    assert json.loads(last.before)["roles"] == ["qa"] and json.loads(last.after)["roles"] == [
        "qa_manager",
        "viewer",
    ]
    before = len(audit(engine))
    with engine.begin() as conn, pytest.raises(UserInputError, match="nobody changes their own roles"):
        set_roles(conn, "root", ["admin", "qa"], by=admin, now=NOW)
    assert user(engine, "root")["roles"] == ["admin"] and len(audit(engine)) == before
    with engine.begin() as conn, pytest.raises(UserInputError, match="roles: 'god' is not a role"):
        set_roles(conn, "alice", ["god"], by=admin, now=NOW)


def test_reset_password(engine: Engine) -> None:
    add(engine)
    with engine.begin() as conn:
        reset_password(conn, "alice", "a new long password", by=CLI, now=NOW + datetime.timedelta(days=1))
    assert not login(engine, "alice", PASSWORD).ok
    assert login(engine, "alice", "a new long password").ok
    entry = next(e for e in audit(engine) if e.action == "user.reset_password")
    assert "password_hash" not in entry.before and "a new long password" not in entry.after
    assert json.loads(entry.after)["password_changed_at"] != json.loads(entry.before)["password_changed_at"]


def test_password_policy(engine: Engine) -> None:
    with pytest.raises(UserInputError, match=r"^password: is 11 characters; at least 12 are needed$"):
        add(engine, password="x" * 11)
    with pytest.raises(UserInputError, match=r"^password: is 5 characters; at least 20 are needed$"):
        add(engine, password="short", min_length=20)
    add(engine, password="x" * 12)
    with engine.begin() as conn, pytest.raises(UserInputError, match="at least 12"):
        reset_password(conn, "alice", "tiny", by=CLI, now=NOW)
    assert [e.action for e in audit(engine)] == ["user.add"]


def test_a_failing_change_leaves_neither(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The change and its audit entry land together: a refused audit entry takes the change with it,
    and a transaction that fails after the change takes the entry with it."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit refused")

    monkeypatch.setattr(users_module, "append", broken)
    with pytest.raises(RuntimeError):
        add(engine)
    monkeypatch.undo()
    with pytest.raises(RuntimeError), engine.begin() as conn:
        add_user(
            conn, login="bob", printed_name="Bob", email="b@example.com", password=PASSWORD, by=CLI, now=NOW
        )
        raise RuntimeError("later in the same transaction")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(User)).scalar_one() == 0
    assert audit(engine) == []


def test_the_database_refuses_delete_and_login_change(engine: Engine) -> None:
    add(engine)
    with pytest.raises(DBAPIError, match="never deleted"), engine.begin() as conn:
        conn.execute(delete(User))
    with pytest.raises(DBAPIError, match="never change"), engine.begin() as conn:
        conn.execute(update(User).values(login="mallory"))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="never deleted"), engine.begin() as conn:
            conn.execute(text("TRUNCATE users CASCADE"))
    assert user(engine)["login"] == "alice"


def test_refusals_name_the_field(engine: Engine) -> None:
    cases = {
        "login": {"login": "a b"},
        "printed_name": {"printed_name": "   "},
        "email": {"email": "not-an-address"},
        "phone": {"phone": "call me"},
        "roles": {"roles": ["root"]},
    }
    for field, bad in cases.items():
        with pytest.raises(UserInputError, match=f"^{field}: ") as caught:
            add(engine, **bad)
        assert caught.value.field == field
    assert audit(engine) == []


_SERIAL = itertools.count()
HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "x" * 5000,
            "' OR 1=1; DROP TABLE users; --",
            "<script>alert(1)</script>",
            "\ud800",
            "name\nInjected: header",
            "\u202etxt.exe",
            "robert'); DELETE FROM users;--",
        ]
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["login", "printed_name", "email", "phone", "password"]), value=HOSTILE)
def test_hostile_input_is_refused_by_name_never_a_crash(engine: Engine, field: str, value: str) -> None:
    """Any text in any field is either stored as given or refused with a UserInputError naming the field;
    the login check answers (False) for it too."""
    login_name = f"h{next(_SERIAL)}"
    values: dict[str, Any] = {"login": login_name, field: value}
    try:
        user_id: str | None = add(engine, **values)
    except UserInputError as exc:
        user_id = None
        taken = field == "login" and "is taken" in str(exc)  # hypothesis may try the same login twice
        assert exc.field == field and (str(exc).startswith(f"{field}: ") or taken)
    else:
        with engine.connect() as conn:
            stored = conn.execute(select(User.password_hash).where(User.id == user_id)).scalar_one()
        assert stored != value and stored.startswith("$argon2id$")
    result = login(engine, value if field == "login" else login_name, value)
    # Only a stored user whose password is the hostile value itself gets in.
    assert result.ok == (field == "password" and user_id is not None)


def test_the_password_is_checked_before_the_write_transaction(engine: Engine) -> None:
    """The API checks the password on a reading connection (argon2 takes a fifth of a second, which
    must not hold SQLite's write lock); the write transaction then takes that verdict, unless the
    hash changed in between, when it checks again."""
    from coldgate.cloud.identity.users import password_check

    add(engine)
    with engine.connect() as conn:
        right = password_check(conn, "alice", PASSWORD)
        wrong = password_check(conn, "alice", "not the password")
        unknown = password_check(conn, "nobody", PASSWORD)
    assert (right.verified, wrong.verified, unknown.verified) == (True, False, False)
    assert unknown.password_hash is None
    with engine.begin() as conn:
        assert check_login(conn, "alice", PASSWORD, now=NOW, checked=right).ok
    # The password was reset between the check and the transaction: the old verdict does not count.
    with engine.begin() as conn:
        reset_password(conn, "alice", "another long password", by=CLI, now=NOW)
    with engine.begin() as conn:
        stale = check_login(conn, "alice", PASSWORD, now=NOW, checked=right)
    assert (stale.ok, stale.reason) == (False, "wrong password")
    with engine.begin() as conn:
        assert check_login(conn, "alice", "another long password", now=NOW, checked=right).ok
