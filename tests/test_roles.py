"""The role matrix: six fixed roles, their permissions, and separation of duties."""

from __future__ import annotations

import pytest

from coldgate.cloud.identity.roles import PERMISSIONS, QA_PERMISSIONS, ROLES, permissions

READ = {
    "readings.read",
    "alerts.read",
    "gateways.read",
    "dead_letters.read",
    "sites.read",
    "catalog.read",
    "documents.read",
    "tokens.own",
}

#: The matrix as reviewed: a change to roles.py must change this table too, on purpose.
MATRIX = {
    "viewer": READ,
    "dock_operator": READ | {"dock.operate", "alerts.acknowledge", "documents.manage"},
    "qa": READ | {"qa.decide", "alerts.acknowledge"},
    "qa_manager": READ
    | {"qa.decide", "qa.review", "alerts.acknowledge", "audit.read", "dead_letters.replay", "catalog.manage",
       "documents.manage"},
    "recall_coordinator": READ | {"recall.run"},
    "admin": READ
    | {"users.manage", "settings.manage", "gateways.enrol", "audit.read", "dead_letters.replay"},
}


def test_the_six_roles() -> None:
    assert list(ROLES) == ["viewer", "dock_operator", "qa", "qa_manager", "recall_coordinator", "admin"]


@pytest.mark.parametrize("role", list(MATRIX))
def test_matrix(role: str) -> None:
    assert permissions([role]) == MATRIX[role]
    assert isinstance(ROLES[role], frozenset)


def test_admin_holds_no_qa_permission() -> None:
    """Separation of duties: the admin manages people and settings, and decides nothing on goods."""
    assert not permissions(["admin"]) & QA_PERMISSIONS
    assert {"users.manage", "settings.manage", "gateways.enrol"} <= permissions(["admin"])


def test_only_admin_manages_people_and_settings() -> None:
    for role in set(ROLES) - {"admin"}:
        assert not permissions([role]) & {"users.manage", "settings.manage", "gateways.enrol"}, role


def test_master_data_is_the_qa_managers() -> None:
    """Temperature classes, products and lots are a GDP specification: QA's, not the admin's."""
    holders = {role for role in ROLES if "catalog.manage" in permissions([role])}
    assert holders == {"qa_manager"}


def test_documents_are_worked_at_the_dock() -> None:
    """Documents are the dock's and QA's; the admin, who grants roles, works none (separation of duties)."""
    holders = {role for role in ROLES if "documents.manage" in permissions([role])}
    assert holders == {"dock_operator", "qa_manager"}
    assert all("documents.read" in permissions([role]) for role in ROLES)


def test_qa_permissions_only_with_a_qa_role() -> None:
    assert "qa.decide" in permissions(["admin", "qa"])
    assert "qa.review" in permissions(["qa_manager"])
    assert "qa.review" not in permissions(["qa"])


def test_union_and_empty() -> None:
    assert permissions([]) == frozenset()
    assert permissions(["viewer", "viewer"]) == READ
    assert permissions(ROLES) == PERMISSIONS


def test_unknown_role_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"role: 'superuser' is not a role"):
        permissions(["viewer", "superuser"])
