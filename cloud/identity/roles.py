"""The six roles and what each may do: fixed sets of permissions, decided here and nowhere else.

A role is a fixed set of permission names, so a route (or a command) asks for
a permission, never for a role, and the matrix can be read, reviewed and
tested in one place.  Separation of duties holds from the start: ``admin``
manages people, settings and gateway enrolments but holds no QA permission,
so one person cannot both grant themselves a role and release goods; a QA
decision needs a QA role given by someone else (nobody changes their own
roles: ``cloud.identity.users.set_roles``).  The audit trail is read by those
who answer for it: ``qa_manager`` and ``admin``.  Master data (temperature
classes, products, lots) is a GDP specification under QA's control:
``catalog.manage`` is the QA manager's; moving a lot's status is a QA
decision, or for a recall the recall coordinator's.  Inventory documents
(receiving notes, dispatch orders, transfers) are worked at the dock:
``documents.manage`` (make, edit drafts, release to a door, start, complete,
close, import) is the dock operator's and the QA manager's; the admin, who
grants roles, holds none of it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PERMISSIONS", "QA_PERMISSIONS", "ROLES", "permissions"]

#: What anyone signed in may look at (the recorded data and its refusals), and their own API tokens.
_READ = frozenset(
    {"readings.read", "alerts.read", "gateways.read", "dead_letters.read", "sites.read", "catalog.read",
     "documents.read", "tokens.own"}
)
#: Decisions on goods (release, quarantine, review, recall): never held by ``admin`` alone.
QA_PERMISSIONS = frozenset({"qa.decide", "qa.review", "recall.run"})

ROLES: dict[str, frozenset[str]] = {
    "viewer": _READ,
    "dock_operator": _READ | {"dock.operate", "alerts.acknowledge", "documents.manage"},
    "qa": _READ | {"qa.decide", "alerts.acknowledge"},
    "qa_manager": _READ
    | {"qa.decide", "qa.review", "alerts.acknowledge", "audit.read", "dead_letters.replay", "catalog.manage",
       "documents.manage"},
    "recall_coordinator": _READ | {"recall.run"},
    "admin": _READ
    | {"users.manage", "settings.manage", "gateways.enrol", "audit.read", "dead_letters.replay"},
}

#: Every permission some role holds.
PERMISSIONS = frozenset().union(*ROLES.values())


def permissions(roles: Iterable[str]) -> frozenset[str]:
    """The union of the roles' permissions; an unknown role is a ValueError naming it (a typo must
    not silently grant nothing, or worse, be stored and later mean something)."""
    held: set[str] = set()
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"role: {role!r} is not a role (one of {', '.join(ROLES)})")
        held |= ROLES[role]
    return frozenset(held)
