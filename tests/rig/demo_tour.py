"""The demo's guided tour walked in a real browser: each page the demo prints (``TOUR n. what, as login:
URL``), opened as the person it names with the password the demo printed for them, checked for what that
person would look for there, and photographed into ``build/screenshots/``; then QA acknowledges the
excursion's case and signs a decision on it through the page's own form and signature dialog.

It lives in the rig, not in tests/test_demo.py, so the demo test calls it on the demo it already runs
(starting the demo twice would cost CI a minute and a half) and the tour's checks can be read apart from
the API's.  Everything a check needs (the case's id, the report's, the recall's) is taken from the demo's
own output, so the walk follows this run's story rather than one remembered from another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from tests.rig.browser import SHOTS, shot

__all__ = ["TourStop", "parse_passwords", "parse_tour", "walk_the_demo"]

TOUR_LINE = re.compile(r"^\s*TOUR (\d+)\. (.+), as (\w+): (http\S+)$", re.MULTILINE)
PERSON_LINE = re.compile(r"^\s+\w+\s+login (\S+) +password (\S+)\s*$", re.MULTILINE)
#: The case the compressor failure opened, and QA's e-mail about it with its acknowledge link.
EXCURSION_CASE = re.compile(r"CASE  opened (case-\S+) for QA: temperature\.high cr-03")
#: How long a page may take to show what it should (the demo's cloud shares two cores with its site).
PATIENCE_MS = 15_000


@dataclass(frozen=True)
class TourStop:
    number: int
    what: str
    login: str
    url: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


def parse_tour(out: str) -> list[TourStop]:
    """The tour's stops in the order printed; numbered 1, 2, 3... without a hole, so a stop the demo
    meant to print but lost is noticed rather than silently skipped."""
    stops = [TourStop(int(n), what, login, url) for n, what, login, url in TOUR_LINE.findall(out)]
    assert [s.number for s in stops] == list(range(1, len(stops) + 1)), stops
    return stops


def parse_passwords(out: str) -> dict[str, str]:
    """Each printed person's login and fresh password (the People lines)."""
    return dict(PERSON_LINE.findall(out))


def _found(pattern: str, out: str, what: str) -> re.Match[str]:
    found = re.search(pattern, out, re.MULTILINE)
    assert found is not None, f"the demo printed no {what} ({pattern!r}):\n{out[-3000:]}"
    return found


@dataclass
class _Troubles:
    """What went wrong in a person's browser while a stop was open: console errors, uncaught script
    errors and answers of 400 or more (the pages name their icon, so Chromium asks for no
    ``/favicon.ico`` the app would answer 404)."""

    seen: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.seen.append(f"console: {message.text} ({message.location.get('url')})")

    def script(self, error: Any) -> None:
        self.seen.append(f"script error: {error}")

    def response(self, response: Any) -> None:
        if response.status >= 400:
            self.seen.append(f"{response.status} from {response.request.method} {response.url}")

    def check(self, where: str) -> None:
        troubles, self.seen[:] = list(self.seen), []
        assert not troubles, f"{where}: " + "; ".join(troubles)


class _People:
    """One browser context per person, signed in at /login with their printed password the first
    time they are needed (as a newcomer following the tour would), kept for their later stops."""

    def __init__(self, browser: Any, origin: str, passwords: dict[str, str]) -> None:
        self.browser, self.origin, self.passwords = browser, origin, passwords
        self.pages: dict[str, Any] = {}
        self.troubles = _Troubles()

    def page(self, login: str) -> Any:
        if login in self.pages:
            return self.pages[login]
        from playwright.sync_api import expect

        assert login in self.passwords, f"the demo printed no password for {login}: {sorted(self.passwords)}"
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.on("console", self.troubles.console)
        page.on("pageerror", self.troubles.script)
        page.on("response", self.troubles.response)
        page.goto(self.origin + "/login")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", self.passwords[login])
        page.click("button[type=submit]")
        page.wait_for_url(self.origin + "/")
        expect(page.locator("header .who button[type=submit]")).to_have_text("Sign out")
        self.troubles.check(f"signing in as {login}")
        self.pages[login] = page
        return page

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


@contextmanager
def _people(browser: Any, origin: str, passwords: dict[str, str]) -> Iterator[_People]:
    people = _People(browser, origin, passwords)
    try:
        yield people
    finally:
        people.close()


# What a person looks for on each kind of page, chosen by the stop's path (a stop of a kind not known
# here is still opened, checked for errors and photographed).


def _overview(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    tile = page.locator('li.tile[data-sensor$="/cr-03"]')
    expect(tile).to_have_attribute("data-state", "excursion")
    expect(tile.locator(".state")).to_contain_text("excursion", ignore_case=True)
    expect(tile.locator(".why")).to_contain_text("cr-03 above 8.0 °C")


def _cases(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    case = _found(EXCURSION_CASE.pattern, out, "CASE line for cr-03's excursion").group(1)
    row = page.locator(f'tr[data-case="{case}"]')
    expect(row).to_contain_text("temperature.high")
    expect(row).to_contain_text("cr-03")
    expect(row.locator(".severity")).to_have_text("critical")


def _dock(page: Any, stop: TourStop, out: str, name: str) -> None:
    """The door by name; the pallet's note, which leaves the door's live view once completed, through
    the door's own list of documents; the dispatch order's recalled case while it is worked here."""
    from playwright.sync_api import expect

    door = stop.path.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("h1")).to_contain_text(door)
    stopped = re.search(r"STACK LIGHT ON at \S+: lot (\S+) is recalled", out)
    if stopped:  # why the stack light is on: the door's open alert names the lot
        alert = page.locator('table.door-alerts tr[data-rule="door.recalled"]', has_text=stopped.group(1))
        expect(alert.first).to_be_visible()
    if re.search(r"DISPATCH \S+ in the cloud: recalled", out):
        order = page.locator("section.dock-document", has_text=_dispatch_reference(out))
        expect(order.locator('tr[data-discrepancy="recalled"]')).to_be_visible()
    note = _found(r"receiving note (\S+) \(", out, "receiving note on the Dock line").group(1)
    if page.locator("main").get_by_text(note).count() == 0:
        page.click("a.back-link")  # "Documents of this door"
        expect(page.locator("main")).to_contain_text(note)
        shot(page, f"{name}-door-documents")
        page.go_back()


def _dispatch_reference(out: str) -> str:
    return _found(r"DISPATCH \S+ dominik releases (\S+) ", out, "DISPATCH release line").group(1)


def _document(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    heading = page.locator("h1")
    if "receiving note" in stop.what:
        note = _found(r"receiving note (\S+)", stop.what, "receiving note in the stop").group(1)
        expect(heading).to_contain_text(f"Receiving {note}")
        expect(page.locator("table.document-header .document-state")).to_have_text("completed")
        expect(page.locator('tr[data-rec-line="1"] td.filling')).to_contain_text("24 / 24")
    elif "dispatch order" in stop.what:
        order = _found(r"dispatch order (\S+)", stop.what, "dispatch order in the stop").group(1)
        expect(heading).to_contain_text(order)
        if re.search(rf"DISPATCH {re.escape(order)} in the cloud: recalled", out):
            refused = page.locator('table.rec-discrepancies tr[data-discrepancy="recalled"]')
            expect(refused).to_be_visible()
            lot = re.search(r"STACK LIGHT ON at \S+: lot (\S+) is recalled", out)
            if lot:
                expect(refused).to_contain_text(lot.group(1))


def _history(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    summary = _found(r"HISTORY lot (\S+): (\d+) segments, in (\S+) ", out, "HISTORY summary line")
    lot, segments, room = summary.group(1), int(summary.group(2)), summary.group(3)
    expect(page.locator("h1")).to_contain_text(f"Environmental history of lot {lot}")
    places = page.locator("h2:has-text('Where it was') + table tbody tr")
    expect(places).to_have_count(segments)
    expect(places.last).to_contain_text(room)
    expect(page.locator("main")).to_contain_text(f"{room} (")  # the room's own section, its chart and sensors
    for link, kind in (("a.download-pdf", "application/pdf"), ("a.download-csv", "text/csv"),
                       ("a.download-epcis", "json")):  # fmt: skip
        href = page.locator(link).get_attribute("href")
        got = page.context.request.get(urljoin(page.url, href))
        assert got.ok and kind in got.headers.get("content-type", ""), (link, got.status, got.headers)


def _recalls(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    ran = _found(r"RECALL (recall-\S+) class (\S+) by \S+: lot (\S+) recalled", out, "RECALL line")
    row = page.locator(f'tr[data-recall="{ran.group(1)}"]')
    expect(row).to_contain_text(f"Class {ran.group(2)}")
    expect(row).to_contain_text(ran.group(3))
    # The run itself, one click on: the stock to block where it is.
    stock = _found(r"RECALL recall-\S+ .*stock to block: (\S+) (\d+) pallet", out, "RECALL stock").group(1)
    row.locator("a.recall-link").click()
    expect(page.locator("h1")).to_contain_text(ran.group(1))
    expect(page.locator("table.recall-stock")).to_contain_text(stock)
    shot(page, f"{name}-the-run")
    page.go_back()


def _reports(page: Any, stop: TourStop, out: str, name: str) -> None:
    from playwright.sync_api import expect

    report = _found(r"REPORT (RPT-\S+): monthly record of (\S+)", out, "REPORT line")
    row = page.locator("table.reports tbody tr", has_text=report.group(1))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"({report.group(2)})")
    href = row.locator("a").first.get_attribute("href")
    got = page.context.request.get(urljoin(page.url, href))
    assert got.ok and got.headers.get("content-type") == "application/pdf", (href, got.status, got.headers)


def _audit(page: Any, stop: TourStop, out: str, name: str) -> None:
    """Named people doing the story's work, not only signing in: the receipt's moves by the dock
    operator, the recall by its coordinator."""
    from playwright.sync_api import expect

    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_be_visible()
    who_did, why = set(), set()
    for cells in rows.evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText))"):
        name, action, reason = cells[2].split("\n")[0].strip(), cells[3].strip(), cells[5].strip()
        if "(system)" not in name and not action.startswith(("user.login", "session.")):
            who_did.add(name)
            if reason:
                why.add(name)
    assert {"Dominik Dock", "Rico Recall"} <= who_did, sorted(who_did)
    assert "Dominik Dock" in why, sorted(why)  # the receipt's moves, each with its reason


CHECKS: tuple[tuple[Callable[[str], bool], Callable[[Any, TourStop, str, str], None]], ...] = (
    (lambda path: path == "/", _overview),
    (lambda path: path.rstrip("/") == "/dashboard/cases", _cases),
    (lambda path: path.startswith("/dashboard/dock/"), _dock),
    (lambda path: path.startswith("/dashboard/documents/"), _document),
    (lambda path: path.endswith("/history"), _history),
    (lambda path: path.rstrip("/") == "/dashboard/recalls", _recalls),
    (lambda path: path.rstrip("/") == "/dashboard/reports", _reports),
    (lambda path: path.rstrip("/") == "/dashboard/audit", _audit),
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _sign_the_case(people: _People, out: str, prefix: str) -> None:
    """Quentin, QA, from the e-mail's acknowledge link when the demo printed his: acknowledges,
    investigates, proposes to reject and destroy what the room held (the excursion broke the 2-8 °C
    class of a lot now recalled), then signs that decision in the dialog with his password again."""
    from playwright.sync_api import expect

    case = _found(EXCURSION_CASE.pattern, out, "CASE line for cr-03's excursion").group(1)
    origin = people.origin
    link = re.search(rf"MAIL  to quentin@\S+: .* - case {case}\n\s+acknowledge link: (\S+)", out)
    page = people.page("quentin")
    page.goto(link.group(1) if link else f"{origin}/dashboard/cases/{case}")
    expect(page.locator("h1")).to_contain_text(case)
    if link:
        expect(page.locator("p.ack-link")).to_contain_text("You followed the notification sent to")
    page.wait_for_load_state("load")  # the page's deferred case.js opens the signature dialog
    state = page.locator("h1 .case-state")
    expect(state, f"{case} is not open: someone took it a step before QA").to_have_text("open")
    steps = (
        ("acknowledged", "acknowledged", ""),  # from the link, the page gives the reason itself
        ("investigating", "investigating", "cr-03's compressor failed; reviewing the readings"),
        ("pending_disposition", "pending disposition", "out of 2-8 °C past the class's budget"),
    )
    for to, shown, reason in steps:
        form = page.locator(f'form.case-move[data-to="{to}"]')
        if to == "pending_disposition":
            form.locator("select[name=disposition]").select_option("rejected_destroyed")
        form.locator("input[name=reason]").fill(reason)
        form.locator("button[type=submit]").click()
        expect(page.locator("p.done")).to_contain_text(f"moved to {shown}")
        expect(state).to_have_text(shown)
        people.troubles.check(f"moving {case} to {to}")
    if link:
        acknowledged = page.locator("table.case-timeline tr", has_text="acknowledged").first
        expect(acknowledged).to_contain_text("Quentin")
        expect(acknowledged).to_contain_text("acknowledged from the notification's link")
    shot(page, f"{prefix}-case-pending-disposition")
    page.wait_for_load_state("load")
    page.click("button.open-signature[data-dialog=sign-closed]")
    dialog = page.locator("dialog#sign-closed")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".meaning")).to_contain_text("Signing as Quentin")
    expect(dialog.locator("select[name=disposition]")).to_have_value("rejected_destroyed")
    dialog.locator("textarea[name=reason]").fill("out of 2-8 °C with no budget allowed; the lot is recalled")
    if dialog.locator("input[name=login]").count():
        dialog.locator("input[name=login]").fill("quentin")
    dialog.locator("input[name=password]").fill(people.passwords["quentin"])
    SHOTS.mkdir(parents=True, exist_ok=True)  # the dialog alone: a full page's shot greys only one screen
    dialog.screenshot(path=str(SHOTS / f"{prefix}-case-signature-dialog.png"))
    dialog.locator("button.sign").click()
    expect(page.locator("p.error")).to_have_count(0)
    expect(page.locator("p.done")).to_be_visible()
    signature = page.locator("table.case-signatures tr.matches")
    expect(signature).to_have_count(1)
    expect(signature).to_contain_text("Quentin")
    expect(signature).to_contain_text("approved")
    expect(signature).to_contain_text("rejected destroyed")
    shot(page, f"{prefix}-case-signed-by-quentin")
    people.troubles.check(f"signing {case}")


def walk_the_demo(browser: Any, out: str, prefix: str = "demo") -> None:
    """Walk every TOUR stop of the demo's output ``out`` in ``browser`` (the rig's Chromium), then sign
    the excursion's case as QA; screenshots are ``build/screenshots/{prefix}-tour-NN-...png``.  Call it
    while the demo still runs, after its ``RECALL http`` line (the last stop's report and recall)."""
    stops = parse_tour(out)
    assert stops, "the demo printed no guided tour (TOUR lines):\n" + out[:4000]
    passwords = parse_passwords(out)
    origins = {s.origin for s in stops}
    assert len(origins) == 1, origins
    with _people(browser, origins.pop(), passwords) as people:
        for stop in stops:
            page = people.page(stop.login)
            where = f"TOUR {stop.number} ({stop.what}, as {stop.login})"
            answer = page.goto(stop.url)
            assert answer is not None and answer.status == 200, f"{where}: {answer and answer.status}"
            assert page.locator("p.error, section.signin").count() == 0, f"{where}: {page.inner_text('main')}"
            name = f"{prefix}-tour-{stop.number:02d}-{_slug(stop.what)}"
            for fits, check in CHECKS:
                if fits(stop.path):
                    check(page, stop, out, name)
            shot(page, name)
            people.troubles.check(where)
        _sign_the_case(people, out, prefix)
