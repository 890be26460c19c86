"""Refusals a person has to hear about: gateways not enrolled, messages too large, batches ahead of
the sequence window, and two items under one number."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from sqlalchemy import Connection

from coldgate.cloud.alerts.ingest_alerts import AHEAD_RULE, CONFLICT_RULE, raise_for_person
from coldgate.cloud.ingest.dead_letter_budget import Spent
from coldgate.cloud.ingest.dead_letter_payload import KeptPayload
from coldgate.cloud.ingest.dead_letters import (
    NOT_ENROLLED_REASON,
    NOT_ENROLLED_SOURCE,
    dead_letter,
)
from coldgate.cloud.ingest.group import Group, Outcome
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON
from coldgate.cloud.ingest.unknown_gateways import note_unknown
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Severity
from coldgate.contract.topics import TopicInfo, parse_topic

__all__ = ["not_enrolled", "refuse_ahead", "refuse_oversized", "refuse_whole", "report_conflicts"]

log = logging.getLogger(__name__)


def not_enrolled(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    why: str,
    now: datetime.datetime,
    group: Group,
    kept: KeptPayload | None = None,
) -> Outcome:
    """Nothing is stored from a gateway the cloud does not take data from: the first message of its
    id is logged and kept as a dead letter (under the budget all such gateways share), the rest
    counted in ``unknown_gateways``."""
    outcome = Outcome("not_enrolled")
    size = len(payload) if kept is None else kept.size
    if note_unknown(conn, info.gateway, info.site, why, size, now):
        log.warning("refused a message on %s: %s; nothing from it is stored", topic, why)
        spent = dead_letter(
            conn,
            topic=topic,
            payload=payload,
            reason=f"{NOT_ENROLLED_REASON} {why}",
            now=now,
            gateway=info.gateway,
            path="$",
            budget=group.limits.budget,
            source=NOT_ENROLLED_SOURCE,
            kept=kept,
        )
        outcome.dead_letters, outcome.dead_letters_dropped = 1, int(spent is not Spent.KEPT)
    return outcome


def refuse_oversized(
    conn: Connection, topic: str, kept: KeptPayload, now: datetime.datetime, limits: IngestLimits
) -> Outcome:
    """A message over ``limits.max_message_bytes``, of which the worker kept only a prefix with the
    size and hash of the whole (``cut``): dead-lettered as such, charged to its source."""
    reason = (
        f"payload of {kept.size} bytes is over ingest's limit of {limits.max_message_bytes} bytes "
        "([ingest] max_message_bytes)"
    )
    budget = limits.budget
    try:
        info = parse_topic(topic)
    except ContractError:
        spent = dead_letter(conn, topic=topic, payload=kept.data, reason=reason, now=now, path="$",
                            budget=budget, kept=kept)  # fmt: skip
        return Outcome("dead_letter", dead_letters=1, dead_letters_dropped=spent is not Spent.KEPT)
    group = Group(limits=limits)
    admitted = group.admit(conn, info.gateway, info.site)
    if admitted.refused is not None:
        return not_enrolled(conn, info, topic, kept.data, admitted.refused, now, group, kept)
    spent = dead_letter(conn, topic=topic, payload=kept.data, reason=reason, now=now, gateway=info.gateway,
                        path="$", budget=budget, kept=kept)  # fmt: skip
    dropped = int(spent is not Spent.KEPT)
    return Outcome(
        "dead_letter", dead_letters=1, dead_letters_dropped=dropped, gateway=info.gateway, site=info.site
    )


def refuse_whole(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    error: ContractError,
    now: datetime.datetime,
    group: Group,
) -> Outcome:
    """A whole message from a gateway's topic dead-lettered, with the path and reason of ``error``."""
    where = {"gateway": info.gateway, "path": error.path}
    spent = dead_letter(
        conn, topic=topic, payload=payload, reason=error.reason, now=now, budget=group.limits.budget, **where
    )
    dropped = int(spent is not Spent.KEPT)
    return Outcome(
        "dead_letter", dead_letters=1, dead_letters_dropped=dropped, gateway=info.gateway, site=info.site
    )


def refuse_ahead(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    why: str,
    header: dict[str, Any],
    now: datetime.datetime,
    group: Group,
    outcome: Outcome,
) -> None:
    """Keep the refused batch as evidence, and tell a person once in a while."""
    spent = dead_letter(
        conn, topic=topic, payload=payload, reason=why, now=now, gateway=info.gateway, path="$.first_seq",
        batch=header, budget=group.limits.budget,
    )  # fmt: skip
    outcome.dead_letters += 1
    outcome.dead_letters_dropped += spent is not Spent.KEPT
    raise_for_person(
        conn,
        gateway=info.gateway,
        rule=AHEAD_RULE,
        key=header["stream"],
        message=(
            f"Gateway {info.gateway}, stream {header['stream']}: a batch of seqs "
            f"{header['first_seq']}..{header['last_seq']} was refused, {why.removeprefix(AHEAD_REASON)}. "
            "A real gateway's items come again in order; one that never does was not the gateway's."
        ),
        details={key: value for key, value in header.items() if key != "boot"},
        now=now,
        quiet_s=group.limits.budget.window_s,
    )


def report_conflicts(
    conn: Connection, gateway: str, stream: str, seqs: list[int], now: datetime.datetime, group: Group
) -> None:
    """Two different items under one number: a person decides which is the gateway's (the stored one
    stays, records are never edited; the newcomer is in the dead letters)."""
    shown = ", ".join(str(seq) for seq in seqs[:20]) + (" ..." if len(seqs) > 20 else "")
    raise_for_person(
        conn,
        gateway=gateway,
        rule=CONFLICT_RULE,
        key=stream,
        message=(
            f"Gateway {gateway}, stream {stream}: {len(seqs)} item(s) arrived with content other than "
            f"the item stored under the same number (seq {shown}). The stored item is kept and the "
            "newcomer is a dead letter: decide which one is the gateway's."
        ),
        details={"stream": stream, "count": len(seqs), "first_seq": seqs[0], "seqs": shown},
        now=now,
        severity=Severity.CRITICAL,
        quiet_s=group.limits.budget.window_s,
    )
