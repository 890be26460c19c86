"""Whether each gateway runs on the documents the cloud published, and the alert when one stays behind.

A recall that reached the cloud but not the door stops nothing.  Each
gateway says in its status which version of each document it has in force
(``versions``) and why it rejected one (an error of kind ``recall_rejected``
or ``master_rejected``); the cloud knows what it published and when
(``downlink_documents``).  A gateway is *behind* from the moment the first
version it has not applied was issued; past ``behind_after_s`` (the
configured ``[gateways] downlink_behind_after_s``) a ``downlink.behind``
alert is raised for a person, and cleared once the gateway reports the
version in force.  A rejection is shown with the gateway's reason.

Pure: the watch (``currency_watch``) reads the rows and appends the alerts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from coldgate.cloud.alerts.cloud_stream import cloud_item_fields
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType

__all__ = ["RULE", "ClearBehind", "Currency", "RaiseBehind", "alert_id", "behind_alert", "currency", "judge"]

RULE = "downlink.behind"
State = Literal["current", "behind", "rejected", "not reported", "none published"]


@dataclass(frozen=True, slots=True)
class Currency:
    gateway: str
    kind: str
    #: The newest version published, and when it was issued (epoch ms).
    published: int | None
    issued: int | None
    #: The version the gateway says it has in force (None: not reported).
    applied: int | None
    state: State
    #: Epoch ms since which the gateway is behind (the first unapplied version's issue time).
    since: int | None
    detail: str


def _reported(status: Mapping[str, Any] | None, kind: str) -> int | None:
    versions = (status or {}).get("versions")
    value = versions.get(kind) if isinstance(versions, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rejection(status: Mapping[str, Any] | None, kind: str) -> str | None:
    for error in (status or {}).get("errors") or ():
        if isinstance(error, dict) and error.get("kind") == f"{kind}_rejected":
            return str(error.get("message", ""))[:500]
    return None


def currency(
    gateway: str, kind: str, published: Iterable[tuple[int, int]], status: Mapping[str, Any] | None
) -> Currency:
    """``published``: (version, issued epoch ms) of each version sent to ``gateway``; ``status``: newest."""
    issued = sorted(published)
    applied = _reported(status, kind)
    if not issued:
        return Currency(gateway, kind, None, None, applied, "none published", None, "nothing published yet")
    newest, newest_at = issued[-1]
    if applied is not None and applied >= newest:
        return Currency(gateway, kind, newest, newest_at, applied, "current", None, f"v{applied} in force")
    since = next(at for version, at in issued if applied is None or version > applied)
    rejected = _rejection(status, kind)
    if rejected is not None:
        return Currency(gateway, kind, newest, newest_at, applied, "rejected", since, f"rejected: {rejected}")
    if status is None or (applied is None and "versions" not in (status or {})):
        state: State = "not reported"
        detail = f"v{newest} published; the gateway has not said what it holds"
    else:
        state = "behind"
        detail = (
            f"v{newest} published, v{applied} in force" if applied else f"v{newest} published, none in force"
        )
    return Currency(gateway, kind, newest, newest_at, applied, state, since, detail)


@dataclass(frozen=True, slots=True)
class RaiseBehind:
    currency: Currency
    behind_s: float


@dataclass(frozen=True, slots=True)
class ClearBehind:
    gateway: str
    kind: str


def alert_id(kind: str) -> str:
    """One open alert per gateway and document kind (alert rows are keyed by gateway already)."""
    return f"{RULE}.{kind}"


def judge(
    currencies: Iterable[Currency], open_alerts: set[tuple[str, str]], now_ms: int, behind_after_s: float
) -> list[RaiseBehind | ClearBehind]:
    """Raise for a gateway behind (or rejecting) past ``behind_after_s``; clear once it is current."""
    actions: list[RaiseBehind | ClearBehind] = []
    for c in currencies:
        key = (c.gateway, c.kind)
        lagging = c.state in ("behind", "rejected", "not reported") and c.since is not None
        if lagging and key not in open_alerts and (now_ms - c.since) / 1000 >= behind_after_s:  # type: ignore[operator]
            actions.append(RaiseBehind(c, (now_ms - c.since) / 1000))  # type: ignore[operator]
        elif c.state == "current" and key in open_alerts:
            actions.append(ClearBehind(c.gateway, c.kind))
    return actions


def behind_alert(action: RaiseBehind | ClearBehind, seq: int, now: datetime.datetime) -> Alert:
    """The alert row (stream ``cloud``) for ``action``."""
    if isinstance(action, ClearBehind):
        return Alert(
            **cloud_item_fields(seq, now), alert_id=alert_id(action.kind), action=AlertAction.CLEARED,
            rule=RULE, subject_type=SubjectType.GATEWAY, subject=action.gateway, severity=Severity.WARNING,
            message=f"gateway {action.gateway} runs on the {action.kind} document in force again",
            evidence=Evidence(),
        )  # fmt: skip
    c = action.currency
    what = "recall list" if c.kind == "recall" else "master data"
    minutes = int(action.behind_s // 60)
    return Alert(
        **cloud_item_fields(seq, now), alert_id=alert_id(c.kind), action=AlertAction.RAISED, rule=RULE,
        subject_type=SubjectType.GATEWAY, subject=c.gateway, severity=Severity.WARNING,
        message=f"gateway {c.gateway} has not applied the {what} in force for {minutes} min: {c.detail}",
        evidence=Evidence(start=c.since, details={
            "kind": c.kind, "published": c.published or 0, "applied": c.applied or 0, "state": c.state,
        }),
    )  # fmt: skip
