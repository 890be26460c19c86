"""QA cases' database edge: cases opened from the stored alerts, their list and their page, and the moves
people make (issue 16).  The rules are pure and live elsewhere: which alert opens or joins which case
(``case_opening.py``), which move is allowed to whom and what it asks for (``case_flow.py``).

Every write is audited in its own transaction (``cloud.audit.log.append``): a case opened or an alert
folded into one by the scheduler's job (as the system), a move by the person who made it.  A refused
move is audited too, in a transaction of its own after the refusal rolled back whatever was begun
(:func:`record_refusal`): an inspector asks who tried what, not only what was done.

Nothing is ever updated: a case is its opening row, the alerts folded into it and its numbered steps
(migration 0024, append-only on both dialects); its state is its newest step.

Signed moves (closing with a disposition, cancelling) take electronic signatures, one per request, from
different people at their own screens (``cloud/identity/signatures.py``; the route re-authenticates
each signer first).  A signature is given on the case's current step for one move (target state and
disposition); the move is made, in the same transaction, by the signature that completes what
``case_flow.check_signatures`` asks; until then the case shows who signed and whose signature is still
awaited.  Only signatures that still match the case count: one given before another alert was folded
into the case no longer does.

Each alert placed into a case leaves its evidence snapshot (``case_evidence``); a cold-chain excursion's
case takes the stock its room held and quarantines it, and the case's signed closing settles it
(``case_quarantine``).  Who is told, and when, is the notify job's (``notify_queue``), which reads the
cases this module writes.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Final

from sqlalchemy import Connection, Table, exists, func, insert, select

from coldgate.cloud.alerts.case_content import signed_content
from coldgate.cloud.alerts.case_evidence import evidence_of, latest_figures, take_evidence
from coldgate.cloud.alerts.case_flow import (
    FINAL,
    MOVES,
    Awaiting,
    CaseDuties,
    CaseState,
    Disposition,
    Move,
    Refusal,
    Signer,
    check_move,
    check_note,
    check_signatures,
    gives_stock_back,
    is_overdue,
    may_act,
    next_states,
)  # fmt: skip
from coldgate.cloud.alerts.case_opening import (
    OPENING_SEVERITIES,
    PRE_ALARM,
    CaseAlert,
    case_type,
    cause_of,
    fold,
    is_excursion,
)  # fmt: skip
from coldgate.cloud.alerts.case_quarantine import quarantine_stock, settle, stock_to_settle
from coldgate.cloud.alerts.case_steps import case_summaries, latest_steps
from coldgate.cloud.audit.log import SYSTEM, Actor, append
from coldgate.cloud.catalog.versions import Conflict
from coldgate.cloud.db.models import (
    Alert,
    GatewayEnrolment,
    QaCase,
    QaCaseAlert,
    QaCaseEvidence,
    QaCaseNote,
    QaCaseStep,
    QaCaseStock,
    UserRole,
)  # fmt: skip
from coldgate.cloud.identity import signatures
from coldgate.cloud.identity.roles import permissions
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy
from coldgate.cloud.identity.users import Forbidden, NotFound, UserInputError, aware, checked_text

__all__ = ["VIEWS", "add_note", "case_detail", "list_cases", "move_case", "open_cases", "record_refusal"]

_cases: Table = QaCase.__table__  # type: ignore[assignment]
_folded: Table = QaCaseAlert.__table__  # type: ignore[assignment]
_steps: Table = QaCaseStep.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
_evidence: Table = QaCaseEvidence.__table__  # type: ignore[assignment]
_stock: Table = QaCaseStock.__table__  # type: ignore[assignment]
_notes: Table = QaCaseNote.__table__  # type: ignore[assignment]
#: Stock lines a case's page shows (a room can have held thousands of lots; the count says how many).
STOCK_SHOWN: Final = 500
_ENTITY: Final = "qa_case"
#: Raised alerts read per run of the job (the rest wait for the next run).
BATCH: Final = 1000


def _new_id() -> str:
    return f"case-{secrets.token_hex(6)}"


def _open_by_cause(conn: Connection, causes: Iterable[str]) -> dict[str, str]:
    """The case open (neither closed nor cancelled) for each cause, by cause."""
    wanted = sorted(set(causes))
    if not wanted:
        return {}
    latest = latest_steps().subquery()
    query = (
        select(_cases.c.cause, _cases.c.id, latest.c.state)
        .join(latest, latest.c.case_id == _cases.c.id)
        .where(_cases.c.cause.in_(wanted))
        .order_by(_cases.c.opened_at)
    )
    final = {state.value for state in FINAL}
    return {row.cause: row.id for row in conn.execute(query) if row.state not in final}


def _raised(conn: Connection, limit: int) -> tuple[list[CaseAlert], dict[tuple[str, str], dict[str, Any]]]:
    """Raised alerts that may open a case and are in none yet, oldest first, and each one's evidence."""
    a, f = _alerts.c, _folded.c
    query = (
        select(a.gateway, a.alert_id, a.rule, a.subject_type, a.subject, a.severity, a.message, a.ts,
               a.evidence)
        .where(
            a.action == "raised",
            a.severity.in_(OPENING_SEVERITIES),
            ~a.rule.contains(f".{PRE_ALARM}", autoescape=True),
            ~exists().where(f.gateway == a.gateway, f.alert_id == a.alert_id),
        )
        .order_by(a.ts, a.gateway, a.alert_id)
        .limit(limit)
    )
    seen: dict[tuple[str, str], CaseAlert] = {}
    evidence: dict[tuple[str, str], dict[str, Any]] = {}
    for row in conn.execute(query):
        if (row.gateway, row.alert_id) not in seen:
            seen[(row.gateway, row.alert_id)] = CaseAlert(*row[:8])
            evidence[(row.gateway, row.alert_id)] = dict(row.evidence or {})
    return list(seen.values()), evidence


def _fold_rows(case_id: str, alerts: Iterable[CaseAlert], now: datetime.datetime) -> list[dict[str, Any]]:
    return [
        {"gateway": x.gateway, "alert_id": x.alert_id, "case_id": case_id, "severity": x.severity,
         "raised_ts": x.ts, "message": x.message[:1000], "folded_at": now}
        for x in alerts
    ]  # fmt: skip


def open_cases(
    conn: Connection, now: datetime.datetime, limit: int = BATCH, new_id: Callable[[], str] = _new_id
) -> int:
    """The scheduler's job: every raised alert not yet in a case opens one or joins the one open for
    its cause (``case_opening.fold``); returns how many alerts were placed.  ``new_id`` names a new
    case (``case-`` and 12 random hex digits)."""
    raised, evidence = _raised(conn, limit)
    if not raised:
        return 0
    joining, opening = fold(raised, _open_by_cause(conn, (cause_of(x) for x in raised)))
    g = GatewayEnrolment
    gateways = sorted({x.gateway for x in raised})
    site_of = {
        row.gateway: row.site
        for row in conn.execute(select(g.gateway, g.site).where(g.gateway.in_(gateways)))
    }
    placed = 0
    for case_id, alerts in joining.items():
        conn.execute(insert(_folded), _fold_rows(case_id, alerts, now))
        after = {"alerts": [f"{x.gateway}/{x.alert_id}" for x in alerts]}
        append(conn, actor=SYSTEM, action="qa_case.alert_folded", entity_type=_ENTITY, entity_id=case_id,
               now=now, after=after)  # fmt: skip
        _take(conn, case_id, alerts, evidence, now)
        placed += len(alerts)
    for found in opening:
        first, case_id = found.alerts[0], new_id()
        case = {"id": case_id, "site": site_of.get(first.gateway), "gateway": first.gateway,
                "rule": first.rule, "subject_type": first.subject_type, "subject": first.subject,
                "cause": found.cause, "title": first.message[:1000], "opened_at": now}  # fmt: skip
        conn.execute(insert(_cases), case)
        conn.execute(insert(_steps), _step(case_id, 1, CaseState.OPEN, SYSTEM, now))
        conn.execute(insert(_folded), _fold_rows(case_id, found.alerts, now))
        after = {**{k: v for k, v in case.items() if k != "opened_at"}, "state": CaseState.OPEN.value,
                 "alerts": [f"{x.gateway}/{x.alert_id}" for x in found.alerts]}  # fmt: skip
        append(conn, actor=SYSTEM, action="qa_case.opened", entity_type=_ENTITY, entity_id=case_id, now=now,
               after=after)  # fmt: skip
        _take(conn, case_id, found.alerts, evidence, now)
        placed += len(found.alerts)
    return placed


def _take(
    conn: Connection, case_id: str, alerts: Iterable[CaseAlert],
    evidence: dict[tuple[str, str], dict[str, Any]], now: datetime.datetime,
) -> None:  # fmt: skip
    """Each alert placed into the case: its evidence snapshot, and for a cold-chain excursion the stock
    that was in the room, quarantined (``case_quarantine``)."""
    now_ms = int(now.timestamp() * 1000)
    for alert in alerts:
        found = evidence.get((alert.gateway, alert.alert_id), {})
        take_evidence(conn, case_id, alert, found, now)
        if is_excursion(alert):
            start = int(found.get("start") or alert.ts)
            end = int(found.get("end") or max(alert.ts, now_ms))
            quarantine_stock(conn, case_id, gateway=alert.gateway, sensor=alert.subject, start_ms=start,
                             end_ms=end, title=alert.message, now=now)  # fmt: skip


def _step(
    case_id: str, seq: int, state: CaseState, by: Actor, now: datetime.datetime,
    reason: str | None = None, disposition: Disposition | None = None,
) -> dict[str, Any]:  # fmt: skip
    decided = disposition.value if disposition else None
    return {"case_id": case_id, "seq": seq, "state": state.value, "at": now, "by_name": by.name,
            "by_id": by.id, "reason": reason, "disposition": decided}  # fmt: skip


def _card(row: Any, step: Any, summary: tuple[str, int, int] | None) -> dict[str, Any]:
    severity, count, newest = summary if summary is not None else ("warning", 0, None)
    return {
        "id": row.id, "site": row.site, "gateway": row.gateway, "rule": row.rule,
        "case_type": case_type(row.rule, row.subject_type),
        "subject_type": row.subject_type, "subject": row.subject, "title": row.title,
        "opened_at": aware(row.opened_at), "state": step.state, "since": aware(step.at),
        "severity": severity, "alerts": count, "last_alert_ts": newest,
    }  # fmt: skip


#: The inbox's views: every case, those I have worked (moved, signed, noted), those my roles can take a
#: step further, and those overdue (``case_flow.is_overdue``).
VIEWS: Final = ("all", "mine", "roles", "overdue")


def _mine(conn: Connection, user_id: str) -> set[str]:
    """The cases ``user_id`` has moved, signed or added a note to."""
    s, n, e = _steps.c, _notes.c, signatures.table().c
    found = set(conn.execute(select(s.case_id).where(s.by_id == user_id).distinct()).scalars())
    found |= set(conn.execute(select(n.case_id).where(n.by_id == user_id).distinct()).scalars())
    signed = select(e.record_id).where(e.record_type == _ENTITY, e.signer_id == user_id).distinct()
    return found | set(conn.execute(signed).scalars())


def list_cases(
    conn: Connection, *, site: str | None = None, state: str | None = None, limit: int = 100, offset: int = 0,
    view: str = "all", user_id: str | None = None, held: frozenset[str] = frozenset(),
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Cases, those still open first (then newest opened first), ``offset`` and ``limit`` a page; ``state``:
    only those in it (``all``: every case, as no ``state``); ``view`` (:data:`VIEWS`): ``mine`` those
    ``user_id`` worked, ``roles`` those ``held`` lets one take further, ``overdue`` those late at ``now``.
    Each card says whether it is overdue."""
    if state == "all":
        state = None
    if state is not None and state not in {s.value for s in CaseState}:
        choices = ", ".join(s.value for s in CaseState)
        raise UserInputError("state", f"{state!r} is not a case state (one of {choices}, or all)")
    if view not in VIEWS:
        raise UserInputError("view", f"{view!r} is not a view (one of {', '.join(VIEWS)})")
    moment = now or datetime.datetime.now(datetime.UTC)
    latest = latest_steps().subquery()
    query = select(_cases, latest.c.state, latest.c.at).join(latest, latest.c.case_id == _cases.c.id)
    if site is not None:
        query = query.where(_cases.c.site == site)
    if state is not None:
        query = query.where(latest.c.state == state)
    final = {s.value for s in FINAL}
    rows = conn.execute(query.order_by(_cases.c.opened_at.desc(), _cases.c.id)).all()
    rows.sort(key=lambda r: r.state in final)  # stable: open first, each part newest first
    late = {r.id for r in rows if is_overdue(CaseState(r.state), aware(r.opened_at), moment)}
    if view == "mine":
        mine = _mine(conn, user_id) if user_id else set()
        rows = [r for r in rows if r.id in mine]
    elif view == "roles":
        rows = [r for r in rows if may_act(CaseState(r.state), held)]
    elif view == "overdue":
        rows = [r for r in rows if r.id in late]
    rows = rows[offset : offset + limit]
    summaries = case_summaries(conn, [r.id for r in rows])
    return [{**_card(r, r, summaries.get(r.id)), "overdue": r.id in late} for r in rows]


def _rows_of(conn: Connection, table: Table, case_id: str) -> list[Any]:
    return [r._mapping for r in conn.execute(select(table).where(table.c.case_id == case_id))]


def _content_reader(conn: Connection, case_id: str) -> Callable[[int], dict[str, Any]]:
    """The case's signed content as of a step, its rows read once."""
    case = conn.execute(select(_cases).where(_cases.c.id == case_id)).one()._mapping
    alerts, steps = _rows_of(conn, _folded, case_id), _rows_of(conn, _steps, case_id)
    evidence, stock, notes = (_rows_of(conn, t, case_id) for t in (_evidence, _stock, _notes))
    figures = latest_figures(conn, case_id)
    return lambda seq: signed_content(
        case, alerts, steps, seq, evidence=evidence, figures=figures, stock=stock, notes=notes
    )


def _pending(
    conn: Connection, case_id: str, signed: list[dict[str, Any]], step: Any, acknowledged_by: str | None,
    least: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """The signed moves begun on the case's current step and whose signature each still awaits."""
    state = CaseState(step.state)
    found: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for sig in signed:
        if sig["record_seq"] == step.seq and sig["matches"]:
            found.setdefault((sig["action"], sig["detail"]), []).append(sig)
    pending = []
    for (to, detail), given in found.items():
        move = _move_of(state, to)
        if move is None:
            continue
        chosen = Disposition(detail) if detail else None
        verdict = check_signatures(
            move, _signers(conn, given), releases_stock=_releases_stock(conn, case_id, CaseState(to), chosen),
            acknowledged_by=acknowledged_by if to == CaseState.CLOSED else None, least=least,
        )  # fmt: skip
        pending.append({
            "to": to, "disposition": detail, "signed_by": [g["signer_name"] for g in given],
            "awaiting": verdict.message if isinstance(verdict, (Awaiting, Refusal)) else None,
        })  # fmt: skip
    return pending


def _releases_stock(conn: Connection, case_id: str, target: CaseState, chosen: Disposition | None) -> bool:
    """Whether moving the case to ``target`` releases product (two signatures, always): a release, or a
    closing as no impact or a cancellation that gives quarantined stock back."""
    if target is CaseState.CLOSED and chosen is Disposition.RELEASED:
        return True
    return gives_stock_back(target, chosen) and bool(stock_to_settle(conn, case_id))


def _move_of(state: CaseState, to: str) -> Move | None:
    return MOVES.get((state, CaseState(to))) if to in {s.value for s in CaseState} else None


def _signers(conn: Connection, given: list[dict[str, Any]]) -> list[Signer]:
    """The people behind signatures, with the permissions their roles give them now (a role taken away
    since they signed takes their signature's weight with it)."""
    ids = sorted({g["signer_id"] for g in given})
    roles: dict[str, list[str]] = {}
    query = select(UserRole.user_id, UserRole.role).where(UserRole.user_id.in_(ids))
    for user_id, role in conn.execute(query):
        roles.setdefault(user_id, []).append(role)
    return [Signer(g["signer_id"], g["signer_name"], permissions(roles.get(g["signer_id"], [])), g["meaning"])
            for g in given]  # fmt: skip


def _acknowledged_by(steps: Iterable[Any]) -> str | None:
    return next((s.by_id for s in steps if s.state == CaseState.ACKNOWLEDGED.value), None)


#: No case type configured: closing and cancelling take one signature beside the floors.
ONE_SIGNATURE: Final = CaseDuties()


def case_detail(conn: Connection, case_id: str, duties: CaseDuties = ONE_SIGNATURE) -> dict[str, Any]:
    """One case: as opened, its state, the alerts folded into it, every step, every signature (each
    checked against the case as it stands), the signed moves awaiting another signature (as ``duties``
    ask of its type), and the moves it allows next.  NotFound (``case_id``) when there is no such case."""
    row = conn.execute(select(_cases).where(_cases.c.id == case_id)).one_or_none()
    if row is None:
        raise NotFound("case_id", f"no case {case_id!r}")
    steps = conn.execute(select(_steps).where(_steps.c.case_id == case_id).order_by(_steps.c.seq)).all()
    f = _folded.c
    alerts = conn.execute(
        select(_folded).where(f.case_id == case_id).order_by(f.raised_ts, f.gateway, f.alert_id)
    ).all()
    card = _card(row, steps[-1], case_summaries(conn, [case_id]).get(case_id))
    now = datetime.datetime.now(datetime.UTC)
    card["overdue"] = is_overdue(CaseState(steps[-1].state), aware(row.opened_at), now)
    signed = signatures.signatures_of(conn, _ENTITY, case_id, _content_reader(conn, case_id))
    return {
        **card,
        "cause": row.cause,
        "next": [s.value for s in next_states(CaseState(steps[-1].state))],
        "alert_list": [
            {
                "gateway": x.gateway,
                "alert_id": x.alert_id,
                "severity": x.severity,
                "raised_ts": x.raised_ts,
                "message": x.message,
                "folded_at": aware(x.folded_at),
            }
            for x in alerts
        ],
        "steps": [
            {
                "seq": s.seq,
                "state": s.state,
                "at": aware(s.at),
                "by": s.by_name,
                "by_id": s.by_id,
                "reason": s.reason,
                "disposition": s.disposition,
            }
            for s in steps
        ],
        "signatures": signed,
        "pending": _pending(
            conn, case_id, signed, steps[-1], _acknowledged_by(steps), duties.least(card["case_type"])
        ),
        "evidence": evidence_of(conn, case_id),
        "figures": latest_figures(conn, case_id),
        **_stock_of(conn, case_id),
        "notes": [
            {"seq": n.seq, "kind": n.kind, "text": n.text, "ref": n.ref, "by": n.by_name, "by_id": n.by_id,
             "at": aware(n.at)}
            for n in conn.execute(select(_notes).where(_notes.c.case_id == case_id).order_by(_notes.c.seq))
        ],
    }


def _stock_of(conn: Connection, case_id: str) -> dict[str, Any]:
    """The stock the case found (its first ``STOCK_SHOWN`` lines), how many lines and lots in all, and
    which lots it quarantined."""
    s = _stock.c
    lines = conn.execute(select(_stock).where(s.case_id == case_id).order_by(s.seq).limit(STOCK_SHOWN)).all()
    total = conn.execute(select(func.count()).where(s.case_id == case_id)).scalar_one()
    pairs = conn.execute(
        select(s.product, s.lot, s.status_before).where(s.case_id == case_id, s.lot.is_not(None)).distinct()
    ).all()
    return {
        "stock": [
            {"seq": x.seq, "site": x.site, "location": x.location, "product": x.product, "gtin": x.gtin,
             "lot": x.lot, "unit": x.unit, "quantity": x.quantity, "first_in": x.first_in,
             "last_out": x.last_out, "status_before": x.status_before}
            for x in lines
        ],
        "stock_lines": total,
        "stock_lots": len({(p.product, p.lot) for p in pairs}),
        "quarantined": sorted(f"{p.product}/{p.lot}" for p in pairs if p.status_before == "released"),
    }  # fmt: skip


def _refused(refusal: Refusal) -> UserInputError:
    if refusal.kind == "state":
        return Conflict(refusal.field, refusal.message)
    if refusal.kind == "permission":
        return Forbidden(refusal.field, refusal.message)
    return UserInputError(refusal.field, refusal.message)


def move_case(
    conn: Connection, case_id: str, to: str, *, by: Actor, held: frozenset[str], now: datetime.datetime,
    reason: str | None = None, disposition: str | None = None, signer: SignedBy | None = None,
    duties: CaseDuties = ONE_SIGNATURE,
) -> dict[str, Any]:  # fmt: skip
    """Move the case to state ``to`` as ``by`` (holding permissions ``held``), audited; the case as it
    then stands (``duties``: the signatures each type of case takes).  A signed move (closing,
    cancelling) takes ``signer``'s signature (re-authenticated by the caller) and is made when the
    signatures given on this step complete it; until then the case stays and shows whose signature is
    awaited.  Refused, with nothing written: an unknown case (404), a
    move its state does not allow (409), one ``by`` may not make or sign (403), a missing reason,
    disposition or signature, or a signature the move does not take (422)."""
    if to not in {s.value for s in CaseState}:
        raise UserInputError(
            "state", f"{to!r} is not a case state (one of {', '.join(s.value for s in CaseState)})"
        )
    chosen: Disposition | None = None
    if disposition is not None:
        if disposition not in {d.value for d in Disposition}:
            choices = ", ".join(d.value for d in Disposition)
            raise UserInputError("disposition", f"{disposition!r} is not a disposition (one of {choices})")
        chosen = Disposition(disposition)
    reason = checked_text("reason", reason, max_len=1000).strip() if reason is not None else None
    if conn.dialect.name == "postgresql":
        # One move of a case at a time: two people signing a release at the same moment must not each
        # see only their own signature and leave the case awaiting a second it already has.  (SQLite's
        # writer holds its one write lock from the transaction's start.)
        conn.execute(select(_cases.c.id).where(_cases.c.id == case_id).with_for_update())
    steps = conn.execute(
        select(_steps.c.seq, _steps.c.state, _steps.c.by_id)
        .where(_steps.c.case_id == case_id)
        .order_by(_steps.c.seq)
    ).all()
    if not steps:
        raise NotFound("case_id", f"no case {case_id!r}")
    seq, state, target = steps[-1].seq, CaseState(steps[-1].state), CaseState(to)
    found = check_move(state, target, held, reason=reason, disposition=chosen, signing=signer is not None)
    if isinstance(found, Refusal):
        raise _refused(found)
    if found.meaning is None:
        if signer is not None:
            unsigned = f"moving a case to {target.value} is not signed: give no signature"
            raise UserInputError("signature", unsigned)
        _add_step(conn, case_id, seq + 1, state, target, by, now, reason, chosen, [])
        return case_detail(conn, case_id, duties)
    if signer is None:
        raise UserInputError(
            "signature",
            f"moving a case to {target.value} is signed ({found.meaning}): give your password (and your "
            "login at your first signature in a session) in signature",
        )
    if by.id != signer.user_id:
        raise Forbidden("signature", "a signature is given by the person signed in, nobody else")
    content = _content_reader(conn, case_id)
    given = [
        g for g in signatures.signatures_of(conn, _ENTITY, case_id, content)
        if g["record_seq"] == seq and g["matches"] and g["action"] == target.value
        and g["detail"] == (chosen.value if chosen else None)
    ]  # fmt: skip
    ack = _acknowledged_by(steps) if target is CaseState.CLOSED else None
    kind = conn.execute(select(_cases.c.rule, _cases.c.subject_type).where(_cases.c.id == case_id)).one()
    verdict = check_signatures(
        found, [*_signers(conn, given), Signer(signer.user_id, signer.name, held, found.meaning)],
        releases_stock=_releases_stock(conn, case_id, target, chosen), acknowledged_by=ack,
        least=duties.least(case_type(kind.rule, kind.subject_type)),
    )  # fmt: skip
    if isinstance(verdict, Refusal):
        raise _refused(verdict)
    mark = SignatureMark(
        _ENTITY, case_id, seq, target.value, chosen.value if chosen else None, found.meaning, reason or None,
        signer.user_id, signer.login, signer.name, now,
    )  # fmt: skip
    signed = signatures.record_signature(conn, mark, content(seq), session_sha256=signer.session_sha256,
                                         client=by.client)  # fmt: skip
    append(conn, actor=by, action="qa_case.signed", entity_type=_ENTITY, entity_id=case_id, now=now,
           after={"signature": signed["id"], "meaning": found.meaning, "state": target.value,
                  "disposition": mark.detail, "content_sha256": signed["content_sha256"],
                  "awaiting": verdict.message if verdict else None},
           reason=reason or None)  # fmt: skip
    if verdict is None:
        _add_step(conn, case_id, seq + 1, state, target, by, now, reason, chosen,
                  [*(g["id"] for g in given), signed["id"]])  # fmt: skip
        settle(conn, case_id, chosen.value if target is CaseState.CLOSED and chosen else None, by=by, now=now)
    return case_detail(conn, case_id, duties)


def _add_step(
    conn: Connection, case_id: str, seq: int, state: CaseState, target: CaseState, by: Actor,
    now: datetime.datetime, reason: str | None, chosen: Disposition | None, signed: list[str],
) -> None:  # fmt: skip
    conn.execute(insert(_steps), _step(case_id, seq, target, by, now, reason or None, chosen))
    after = {"state": target.value, "disposition": chosen.value if chosen else None,
             **({"signatures": signed} if signed else {})}  # fmt: skip
    append(conn, actor=by, action="qa_case.moved", entity_type=_ENTITY, entity_id=case_id, now=now,
           before={"state": state.value}, after=after, reason=reason or None)  # fmt: skip


def add_note(
    conn: Connection, case_id: str, kind: str, text: str, *, ref: str | None = None, by: Actor,
    held: frozenset[str], now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Add a comment, an attachment's reference or a CAPA finding to the case as ``by``, audited; the
    case as it then stands.  Refused: an unknown case (404), a final case (409), a kind ``by`` may not
    add (403), an unknown kind, empty text or an attachment without its reference (422)."""
    body = checked_text("text", text, max_len=4000).strip()
    if not body:
        raise UserInputError("text", "must not be empty")
    where = checked_text("ref", ref, max_len=1000).strip() if ref is not None else None
    if kind == "attachment" and not where:
        raise UserInputError("ref", "an attachment needs its reference: name, SHA-256 and where it is kept")
    top = conn.execute(
        select(_steps.c.state).where(_steps.c.case_id == case_id).order_by(_steps.c.seq.desc()).limit(1)
    ).scalar()
    if top is None:
        raise NotFound("case_id", f"no case {case_id!r}")
    refusal = check_note(CaseState(top), kind, held)
    if refusal is not None:
        raise _refused(refusal)
    n = _notes.c
    seq = conn.execute(select(func.coalesce(func.max(n.seq), 0)).where(n.case_id == case_id)).scalar_one() + 1
    row = {"case_id": case_id, "seq": seq, "kind": kind, "text": body, "ref": where or None,
           "by_name": by.name, "by_id": by.id, "at": now}  # fmt: skip
    conn.execute(insert(_notes), row)
    append(conn, actor=by, action="qa_case.noted", entity_type=_ENTITY, entity_id=case_id, now=now,
           after={"seq": seq, "kind": kind, "text": body, "ref": where or None})  # fmt: skip
    return case_detail(conn, case_id)


def record_refusal(
    conn: Connection, case_id: str, to: str, refusal: UserInputError, *, by: Actor, now: datetime.datetime
) -> None:
    """Audit a refused move (its own transaction: the refused one rolled back), with what was asked and
    why it was refused."""
    append(conn, actor=by, action="qa_case.move_refused", entity_type=_ENTITY, entity_id=case_id[:64],
           now=now, after={"asked": to[:64]}, reason=str(refusal)[:1000])  # fmt: skip
