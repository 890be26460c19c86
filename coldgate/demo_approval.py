"""The demo's master-data approval: Quentin (QA) signs his approval of the QA manager's change to the
cold class, through the API as a person would (his own token, his login and password given again for
the signature), so the demo shows that a change of master data awaits a second person's e-signature
and that the author is never that person (``cloud/catalog/change_approval.py``)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import click

__all__ = ["approve_class_change"]


def _call(api: str, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        api + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def approve_class_change(api: str, login: str, token: str, password: str, klass: str) -> None:
    """``login`` approves the newest change to temperature class ``klass``, signing with ``password``."""
    listed = _call(api, token, "/catalog/changes?state=awaiting&limit=1000")
    awaiting = listed["items"]
    changes = [c for c in awaiting if c["entity_type"] == "temperature_class" and c["entity_id"] == klass]
    if not changes:
        click.echo(f"APPROVE  no change of temperature class {klass} awaits approval")
        return
    change = max(changes, key=lambda c: c["seq"])
    body = {"reason": "limits checked against the SOP and the stability data",
            "signature": {"login": login, "password": password}}  # fmt: skip
    signed = _call(api, token, f"/catalog/changes/{change['seq']}/approve", body)
    [signature] = signed["approvals"]
    who, meaning, author = signature["signer_name"], signature["meaning"], change["actor_name"]
    click.echo(
        f"APPROVE  {who} signed '{meaning}' on {author}'s change of temperature class {klass} "
        f"(audit #{change['seq']}); {listed['total'] - 1} more master-data changes await a second person: "
        f"{api}/dashboard/catalog/changes"
    )
