"""What of a QA case a signature signs (21 CFR 11.70: the signature is linked to its record): the case
as opened, the alerts folded into it, the excursion's figures as they stand, the evidence snapshots,
the stock it found in the room, people's notes, and its steps up to the one the signature is given on.
Pure: the store reads the rows, this shapes them, ``cloud/identity/signatures.py`` hashes them.

Every value is text or an integer (times as ISO 8601 UTC), so the canonical JSON of it is the same
whichever database the rows came from.  Alerts are all of the case's, not only those folded before
the signature: an alert folded into the case after a signature was given changes what the case holds,
and the signature then shows as no longer matching (its signer signed something else) and no longer
counts towards the move.  Steps after the signed one are left out: the move the signatures complete
adds a step, and that must not unmatch them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["signed_content"]


def _iso(moment: datetime.datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
    return aware.astimezone(datetime.UTC).isoformat()


_STOCK = ("seq", "derivation", "site", "location", "window_start", "window_end", "product", "gtin", "lot",
          "unit", "quantity", "first_in", "last_out", "status_before")  # fmt: skip


def signed_content(
    case: Mapping[str, Any], alerts: Iterable[Mapping[str, Any]], steps: Iterable[Mapping[str, Any]],
    upto_seq: int, *, evidence: Iterable[Mapping[str, Any]] = (), figures: Iterable[Mapping[str, Any]] = (),
    stock: Iterable[Mapping[str, Any]] = (), notes: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:  # fmt: skip
    """The case's signed content as of step ``upto_seq``: rows as the store read them (mappings of
    ``qa_cases``, ``qa_case_alerts``, ``qa_case_steps``, ``qa_case_evidence`` (body as stored text),
    ``qa_case_stock`` and ``qa_case_notes`` columns, and each alert's newest figures)."""
    return {
        "type": "qa_case",
        "case": {
            "id": case["id"], "site": case["site"], "gateway": case["gateway"], "rule": case["rule"],
            "subject_type": case["subject_type"], "subject": case["subject"], "cause": case["cause"],
            "title": case["title"], "opened_at": _iso(case["opened_at"]),
        },
        "alerts": sorted(
            ({"gateway": a["gateway"], "alert_id": a["alert_id"], "severity": a["severity"],
              "raised_ts": int(a["raised_ts"]), "message": a["message"]} for a in alerts),
            key=lambda a: (a["raised_ts"], a["gateway"], a["alert_id"]),
        ),
        "steps": [
            {"seq": int(s["seq"]), "state": s["state"], "at": _iso(s["at"]), "by": s["by_name"],
             "by_id": s["by_id"], "reason": s["reason"], "disposition": s["disposition"]}
            for s in sorted(steps, key=lambda s: int(s["seq"])) if int(s["seq"]) <= upto_seq
        ],
        "evidence": [
            {"seq": int(e["seq"]), "body": e["body"]} for e in sorted(evidence, key=lambda e: e["seq"])
        ],
        "figures": sorted(
            ({"gateway": f["gateway"], "alert_id": f["alert_id"], "action": f["action"], "ts": int(f["ts"]),
              "evidence": dict(f["evidence"])} for f in figures),
            key=lambda f: (f["gateway"], f["alert_id"]),
        ),
        "stock": [{k: line[k] for k in _STOCK} for line in sorted(stock, key=lambda x: x["seq"])],
        "notes": [
            {"seq": int(n["seq"]), "kind": n["kind"], "text": n["text"], "ref": n["ref"], "by": n["by_name"],
             "by_id": n["by_id"], "at": _iso(n["at"])}
            for n in sorted(notes, key=lambda n: n["seq"])
        ],
    }  # fmt: skip
