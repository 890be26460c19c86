"""The QA pages (issue 16): the case inbox, one case, and the quarantine list.

* **Inbox** (``/dashboard/cases``): every case, those I worked, those my roles can take a step further,
  those overdue; open ones first; filtered by state and site; a hundred a page.
* **Case** (``/dashboard/cases/{id}``): what happened (the excursion's figures, limits, location and the
  calibration in force, and the sensor's chart around it), the stock it found in the room and
  quarantined, everything in time order (alerts, moves, notes, signatures), the signatures each checked
  against the case as it stands, and the forms: the moves the person may make, a note, and for a signed
  move the signature dialog asking the password (and the login at a session's first signature) with
  the meaning spelled out, as 21 CFR 11.50 wants it shown.
* **Quarantine** (``/dashboard/quarantine``): the lots held now and the cases holding them.

Read through the same store functions as the JSON API (``case_store``, ``case_quarantine``); a move goes
through the API route's own ``make_move`` (re-authentication, audit of every refusal), so the form and
``POST /cases/{id}/moves`` cannot differ.  A refusal re-renders the page saying why, nothing changed; a
done move redirects back (POST, redirect, GET).
"""

from __future__ import annotations

import datetime
import time
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from coldgate.cloud.alerts import case_store
from coldgate.cloud.alerts.case_flow import MOVES, NOTE_KINDS, CaseState, Disposition, Refusal, check_move
from coldgate.cloud.alerts.case_quarantine import quarantined_lots
from coldgate.cloud.alerts.notify_links import LinkRefusal
from coldgate.cloud.alerts.notify_queue import check_ack_link
from coldgate.cloud.api import queries, queries_sites
from coldgate.cloud.api.auth import SESSION_COOKIE
from coldgate.cloud.api.routes.cases import MoveBody, case_duties, make_move
from coldgate.cloud.api.signing import SignatureBody
from coldgate.cloud.api.writes import acting, refusal_status, utc_now, writing
from coldgate.cloud.config import NotifyConfig
from coldgate.cloud.db.models import User
from coldgate.cloud.identity.sessions import session_key
from coldgate.cloud.identity.signatures import signed_in_session
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import Who, render, sensor_chart

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Said = Annotated[str | None, Query(max_length=300)]
CaseId = Annotated[str, Path(max_length=64)]
Text = Annotated[str, Form(max_length=4000)]
#: Cases the inbox shows a page.
PAGE = 100
#: How much of the sensor's history the case page draws around the excursion.
AROUND_MS = 3_600_000
VIEW_NAMES = {"all": "All", "mine": "Mine", "roles": "For my roles", "overdue": "Overdue"}
MEANINGS = {
    "approved": "I approve closing this case with the disposition below",
    "cancelled": "I cancel this case for the reason below",
}


@router.get("/dashboard/cases", response_class=HTMLResponse)
def inbox_page(
    who: Who, request: Request, view: Annotated[str, Query(max_length=16)] = "all",
    state: Annotated[str | None, Query(max_length=32)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:  # fmt: skip
    """The cases, open first; a view or filter the store refuses is said and not applied."""
    errors: list[str] = []
    asked = {
        "view": view if view in case_store.VIEWS else "all",
        "state": state or None,
        "site": site or None,
    }
    if view not in case_store.VIEWS:
        errors.append(f"view: {view!r} is not a view (one of {', '.join(case_store.VIEWS)})")
    with request.app.state.engine.connect() as conn:
        try:
            found = _cases(conn, who, asked, offset)
        except UserInputError as exc:
            errors.append(str(exc))
            asked[exc.field] = None if exc.field != "view" else "all"
            found = _cases(conn, who, asked, offset)
        zone = list_zone(queries_sites.zone_book(conn), site or None, None)
    filters = {k: v for k, v in asked.items() if v and k != "view"}
    views = [(key, name, "?" + urlencode({"view": key, **filters})) for key, name in VIEW_NAMES.items()]
    here = {**filters, "view": asked["view"]}
    newer = "?" + urlencode({**here, "offset": max(offset - PAGE, 0)}) if offset else None
    older = "?" + urlencode({**here, "offset": offset + PAGE}) if len(found) > PAGE else None
    return render(
        request, "cases.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if errors else 200,
        cases=found[:PAGE], views=views, newer=newer, older=older, states=list(CaseState), view=asked["view"],
        state=asked["state"] or "", site=site or "", errors=errors, zone=zone,
    )  # fmt: skip


def _cases(conn: Any, who: Who, asked: dict[str, Any], offset: int) -> list[dict[str, Any]]:
    assert who is not None
    return case_store.list_cases(
        conn, site=asked["site"], state=asked["state"], view=asked["view"], limit=PAGE + 1, offset=offset,
        user_id=who.user_id, held=who.permissions,
    )  # fmt: skip


def _window(case: dict[str, Any], now_ms: int) -> tuple[int, int] | None:
    """The excursion's first start and last end (now while it lasts), from the alerts' newest figures."""
    starts, ends = [], []
    for figure in case["figures"]:
        evidence = figure["evidence"]
        starts.append(int(evidence.get("start") or figure["ts"]))
        ends.append(int(evidence.get("end") or (figure["ts"] if figure["action"] == "cleared" else now_ms)))
    return (min(starts), max(ends)) if starts else None


def _timeline(case: dict[str, Any]) -> list[dict[str, Any]]:
    """Alerts, moves, notes and signatures of the case in time order (epoch ms), for the page."""

    def ms(moment: datetime.datetime) -> int:
        return int(moment.timestamp() * 1000)

    events = [{"at": a["raised_ts"], "kind": "alert", "what": f"{a['severity']} alert {a['alert_id']}",
               "detail": a["message"], "by": a["gateway"]} for a in case["alert_list"]]  # fmt: skip
    events += [{"at": ms(s["at"]), "kind": "step", "what": s["state"].replace("_", " "),
                "detail": " · ".join(x for x in (s["disposition"] and f"disposition {s['disposition']}",
                                                 s["reason"]) if x),
                "by": s["by"]} for s in case["steps"]]  # fmt: skip
    events += [{"at": ms(n["at"]), "kind": "note", "what": n["kind"].replace("_", " "), "detail": n["text"],
                "by": n["by"]} for n in case["notes"]]  # fmt: skip
    events += [{"at": ms(g["signed_at"]), "kind": "signature", "what": f"signed: {g['meaning']}",
                "detail": g["reason"] or "", "by": g["signer_name"]} for g in case["signatures"]]  # fmt: skip
    order = {"alert": 0, "note": 1, "signature": 2, "step": 3}  # a closing's signatures come before it
    return sorted(events, key=lambda e: (e["at"], order[e["kind"]]))


def _moves(case: dict[str, Any], held: frozenset[str]) -> list[dict[str, Any]]:
    """The moves this person may offer from the case's state: each with what it asks for."""
    state = CaseState(case["state"])
    offered = []
    for (frm, to), move in MOVES.items():
        if frm is not state:
            continue
        found = check_move(state, to, held, reason="-", disposition=Disposition.NO_IMPACT,
                           signing=move.meaning is not None)  # fmt: skip
        if isinstance(found, Refusal):
            continue
        if move.meaning == "approved" and not ({move.permission, "qa.decide"} & held):
            continue
        offered.append({"to": to.value, "label": to.value.replace("_", " "), "signed": move.meaning,
                        "meaning": MEANINGS.get(move.meaning or "", ""), "reason": move.reason,
                        "disposition": move.disposition})  # fmt: skip
    return offered


def _link(request: Request, conn: Any, token: str | None, case_id: str) -> dict[str, Any] | None:
    """What a notification's acknowledge link (``?ack=``) says: whom it was sent to, or why it is not
    taken.  It signs nobody in and moves nothing: the person signed in acknowledges, as themselves."""
    if not token:
        return None
    config = getattr(request.app.state, "notify", None) or NotifyConfig()
    found = check_ack_link(conn, config, token, case_id, utc_now())
    if isinstance(found, LinkRefusal):
        return {"token": token, "refused": found.message}
    name = conn.execute(select(User.printed_name).where(User.id == found)).scalar()
    return {"token": token, "refused": None, "user_id": found, "name": name or found}


def _case_page(
    request: Request, who: Who, case_id: str, *, done: str | None = None, error: str | None = None,
    status_code: int = 200, ack: str | None = None,
) -> Response:  # fmt: skip
    assert who is not None
    now_ms = int(time.time() * 1000)
    try:
        with request.app.state.engine.connect() as conn:
            case = case_store.case_detail(conn, case_id, case_duties(request))
            link = _link(request, conn, ack, case_id)
            zone = list_zone(queries_sites.zone_book(conn), case["site"], case["gateway"])
            chart = None
            window = _window(case, now_ms)
            if window is not None and case["subject_type"] == "sensor":
                found = [s for s in queries.sensors(conn, case["gateway"], None) if s.id == case["subject"]]
                if found:
                    last = found[0].last_reading
                    chart = sensor_chart(conn, case["gateway"], case["subject"], window[0] - AROUND_MS,
                                         window[1] + AROUND_MS, now_ms=now_ms, last=last)  # fmt: skip
                    chart["unit"] = last.unit if last else ""
            login_asked = True
            if who.via == "session" and who.user_id:
                key = session_key(request.cookies.get(SESSION_COOKIE, ""))
                login_asked = not signed_in_session(conn, key, who.user_id)
    except NotFound as exc:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such case",
                      detail=str(exc))  # fmt: skip
    return render(
        request, "case.html", who, status_code, case=case, zone=zone, chart=chart, window=window,
        timeline=_timeline(case), moves=_moves(case, who.permissions), dispositions=list(Disposition),
        note_kinds=[k for k, need in NOTE_KINDS.items() if need in who.permissions], login_asked=login_asked,
        done=done, error=error, link=link,
    )  # fmt: skip


@router.get("/dashboard/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    who: Who, request: Request, case_id: CaseId, done: Said = None,
    ack: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:  # fmt: skip
    """One case: what happened, the stock it holds, its history, signatures, and what may be done;
    ``ack``: the token of a notification's acknowledge link that brought the person here."""
    return _case_page(request, who, case_id, done=done, ack=ack)


def _back(case_id: str, said: str) -> Response:
    url = f"/dashboard/cases/{quote(case_id, safe='')}?{urlencode({'done': said[:300]})}"
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


@router.post("/dashboard/cases/{case_id}/move", response_class=HTMLResponse)
def move_form(
    who: Who, request: Request, case_id: CaseId, state: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "", disposition: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=1024)] = "", login: Annotated[str, Form(max_length=64)] = "",
    via_link: Annotated[str, Form(max_length=200)] = "",
) -> Response:  # fmt: skip
    """Move the case, or sign its move (the dialog's password, and login when asked); an acknowledgement
    made from a notification's link says so in its reason."""
    if via_link and state == CaseState.ACKNOWLEDGED.value and not reason:
        reason = "acknowledged from the notification's link"
    signature = SignatureBody(password=password, login=login or None) if password else None
    body = MoveBody(state=state, reason=reason or None, disposition=disposition or None, signature=signature)
    try:
        moved = make_move(request, case_id, body)
    except UserInputError as exc:
        return _case_page(request, who, case_id, error=str(exc), status_code=refusal_status(exc))
    if moved["state"] == state:
        return _back(case_id, f"moved to {state.replace('_', ' ')}")
    awaiting = next((p["awaiting"] for p in moved["pending"] if p["to"] == state), None)
    return _back(case_id, f"signed; {awaiting}" if awaiting else "signed")


@router.post("/dashboard/cases/{case_id}/notes", response_class=HTMLResponse)
def note_form(
    who: Who, request: Request, case_id: CaseId, kind: Annotated[str, Form(max_length=32)] = "",
    text: Text = "", ref: Annotated[str, Form(max_length=1000)] = "",
) -> Response:  # fmt: skip
    """Add a comment, an attachment's reference or a CAPA finding."""
    assert who is not None
    try:
        with writing(request) as conn:
            case_store.add_note(conn, case_id, kind, text, ref=ref or None, by=acting(request),
                                held=who.permissions, now=utc_now())  # fmt: skip
    except UserInputError as exc:
        return _case_page(request, who, case_id, error=str(exc), status_code=refusal_status(exc))
    return _back(case_id, f"{kind.replace('_', ' ')} added")


@router.get("/dashboard/quarantine", response_class=HTMLResponse)
def quarantine_page(
    who: Who, request: Request, site: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """The lots held in quarantine now, and the open cases holding each."""
    with request.app.state.engine.connect() as conn:
        lots = quarantined_lots(conn, site=site or None)
        zone = list_zone(queries_sites.zone_book(conn), site or None, None)
    return render(request, "quarantine.html", who, lots=lots, site=site or "", zone=zone)
