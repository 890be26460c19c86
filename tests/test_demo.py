"""``coldgate demo --story`` from a newcomer's point of view: the site runs end to end, the excursion
alert reaches the cloud's API and becomes a QA case e-mailed to QA, the siren sounds, a pallet through
the dock door completes its receiving note, a recalled case picked for a dispatch lights the dock's
stack light, the lot's history and recall run are there; the story is told to its end, the guided
tour's pages are walked in a browser as the people it names, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.rig.demo_tour import walk_the_demo
from tests.rig.ports import free_port


def _get(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.mark.timeout(300)
def test_demo_tells_the_whole_story_through_the_api_and_the_browser(tmp_path: Path, browser: Any) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "coldgate", "demo", "--story",
            "--speed", "600", "--interval", "1", "--data-dir", str(tmp_path), "--api-port", str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        token = None
        while token is None:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no API line:\n" + "".join(lines)
            found = re.search(r"API: http://127\.0\.0\.1:(\d+)/docs  \(token: (\S+)\)", "".join(lines))
            if found:
                assert int(found.group(1)) == port
                token = found.group(2)
            time.sleep(0.2)
        api = f"http://127.0.0.1:{port}"
        alert = None
        deadline = time.monotonic() + 90
        while alert is None:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no excursion alert via the API:\n" + "".join(lines)
            alerts = _get(f"{api}/alerts?state=open", token)["items"]  # type: ignore[index]
            alert = next((a for a in alerts if a["rule"] == "temperature.high"), None)
            time.sleep(0.5)
        assert alert["subject"] == "cr-03" and alert["severity"] == "critical"
        assert alert["gateway"] == "demo-gw-01"
        # The excursion opened a QA case (the cloud's job, every 5 s in the demo), shown on the screen too.
        case = None
        while case is None:
            assert time.monotonic() < deadline + 30, "no QA case for the excursion:\n" + "".join(lines)
            cases = _get(f"{api}/cases", token)["items"]  # type: ignore[index]
            wanted = ("temperature.high", "cr-03")
            case = next((c for c in cases if (c["rule"], c["subject"]) == wanted), None)
            time.sleep(0.5)
        assert case["state"] == "open" and case["severity"] == "critical" and case["site"]
        while f"CASE  opened {case['id']} for QA: temperature.high cr-03" not in "".join(lines):
            assert time.monotonic() < deadline + 40, "the case is not on the screen:\n" + "".join(lines)
            time.sleep(0.2)
        # QA, the QA manager and the dock are e-mailed at once, through the demo's own mailbox, each
        # message with its acknowledge link to the case's page.
        told = ("quentin", "marta", "dominik")
        while not all(f"MAIL  to {login}@demo.invalid" in "".join(lines) for login in told):
            assert time.monotonic() < deadline + 60, "no e-mail to QA on the screen:\n" + "".join(lines)
            time.sleep(0.2)
        assert f"/dashboard/cases/{case['id']}?ack=" in "".join(lines)
        # Without a token the API refuses; health is open.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{api}/alerts", timeout=5)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"{api}/health", timeout=5) as response:
            assert json.load(response)["status"] == "ok"
        sensors = _get(f"{api}/sensors", token)["items"]  # type: ignore[index]
        assert len(sensors) >= 10 and all(s["last_reading"] is not None for s in sensors)
        # The printed token is a person's (the QA manager's), and each printed person can sign in.
        me = _get(f"{api}/auth/me", token)
        assert (me["via"], me["login"], me["roles"]) == ("token", "marta", ["qa_manager"])  # type: ignore[index]
        people = dict(re.findall(r"login (\S+) +password (\S+)", "".join(lines)))
        assert set(people) == {"vera", "dominik", "quentin", "marta", "rico", "ada"}
        body = json.dumps({"login": "ada", "password": people["ada"]}).encode()
        signing_in = urllib.request.Request(
            f"{api}/auth/login", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(signing_in, timeout=10) as response:
            assert json.load(response)["roles"] == ["admin"]
        trail = _get(f"{api}/audit?action=user.add", token)
        assert trail["total"] == 6  # type: ignore[index]
        # The printed dashboard line names marta's password; the overview shows the red tile.
        dashboard = re.search(r"Dashboard: (\S+)  \(sign in as marta, password (\S+)\)", "".join(lines))
        assert dashboard is not None and dashboard.group(2) == people["marta"]
        overview = _get(f"{api}/overview", token)
        states = {t["sensor"]: t["state"] for t in overview["tiles"]}  # type: ignore[index]
        assert states.get("cr-03") == "excursion", states
        rooms = {t["sensor"]: t["location_name"] for t in overview["tiles"]}  # type: ignore[index]
        assert rooms.get("cr-01") == "Cold room A (vaccines)", rooms  # the dashboard shows rooms by name
        # The gateway's zones and the cloud's placements name the same rooms: nothing to propose, no drift.
        topology = _get(f"{api}/gateways/demo-gw-01/topology", token)
        states = {f["device"]: f["state"] for f in topology["devices"]}  # type: ignore[index]
        assert states and set(states.values()) == {"agreeing"}, topology
        assert {z["state"] for z in topology["zones"]} == {"located"}, topology  # type: ignore[index]
        # The dock door's own Pi: its reader and picking scanner, placed at DOCK-1.
        door = _get(f"{api}/gateways/demo-gw-dock/topology", token)
        states = {f["device"]: f["state"] for f in door["devices"]}  # type: ignore[index]
        assert states == {"dock1-r1": "agreeing", "dock1-s1": "agreeing"}, door
        # The dock: the pallet passed the portal, the cloud bound its 24 cases to the receiving note,
        # and dominik completed the receipt (issue 15).
        deadline = time.monotonic() + 30
        while "ASN-4711 completed by dominik" not in "".join(lines):
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert "completing ASN-4711 refused" not in "".join(lines), "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "the receipt was never completed:\n" + "".join(lines)[-3000:]
            time.sleep(0.2)
        note = re.search(r"the note: \S+/dashboard/documents/(\S+)", "".join(lines))
        assert note is not None
        receipt = _get(f"{api}/documents/{note.group(1)}", token)
        stands = [receipt[k] for k in ("state", "reference", "door")]  # type: ignore[index]
        assert stands == ["completed", "ASN-4711", "DOCK-1"], receipt
        check = _get(f"{api}/documents/{note.group(1)}/reconciliation", token)
        assert check["complete"] and check["completeness"] == "completeness_verified", check  # type: ignore[index]
        [line] = check["lines"]  # type: ignore[index]
        assert (line["seen"], line["expected"], line["cbv"]) == (24, 24, "completeness_verified"), line
        assert [d for d in check["discrepancies"] if d["blocking"]] == [], check  # type: ignore[index]
        moves = _get(f"{api}/audit?entity_type=document&entity_id={note.group(1)}", token)["items"]  # type: ignore[index]
        assert {m["actor_name"] for m in moves} == {"Dominik Dock"}, moves
        # Its custody: every case and the pallet inside the door (cold room A) since the receipt.
        lot = _get(f"{api}/lots/04006381333931/L2026-10/custody", token)
        [stock] = lot["stock"]  # type: ignore[index]
        assert (stock["location"], stock["cases"], stock["pallets"]) == ("CR-A", 24, 1), lot
        began = {s["began_by"]["what"] for s in lot["stays"]}  # type: ignore[index]
        assert began == {"receipt"}, lot
        # Its environmental history (issue 17): the supplier's segment, then cold room A and its sensors.
        history = _get(f"{api}/lots/04006381333931/L2026-10/history", token)
        places = [(s["custody"], s["location"] or s["party"]) for s in history["segments"]]  # type: ignore[index]
        assert places == [("supplier", "Vaxo Pharma GmbH, Marburg"), ("ours", "CR-A")], places
        # The dispatch: a case of the recalled insulin lot, scanned for SO-0815 at the door, lit the dock's
        # stack light (its own Pi's alarm, not the cold rooms' siren), and the cloud names it on the order.
        deadline = time.monotonic() + 60
        while "That is the story" not in "".join(lines):  # the history, the record, the recall, the end
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the story never ended:\n" + "".join(lines)[-3000:]
            time.sleep(0.2)
        out = "".join(lines)
        assert "DISPATCH STACK LIGHT ON at DOCK-1: lot L2026-08 is recalled" in out, out[-4000:]
        door_alerts = [a for a in _get(f"{api}/alerts?gateway=demo-gw-dock&state=all", token)["items"]  # type: ignore[index]
                       if a["rule"] == "door.recalled" and a["severity"] == "critical"]  # fmt: skip
        assert door_alerts and "lot L2026-08" in door_alerts[0]["message"], door_alerts
        order = re.search(
            r"dispatch order SO-0815 made by dominik, picked at scenario \S+: \S+/documents/(\S+)", out
        )
        assert order is not None, out[:6000]
        picked = _get(f"{api}/documents/{order.group(1)}/reconciliation", token)
        found = [(d["kind"], d["lot"]) for d in picked["discrepancies"]]  # type: ignore[index]
        assert found == [("recalled", "L2026-08")], picked
        assert not picked["complete"]  # type: ignore[index]
        # The guided tour's pages, in a browser, as the people it names.
        walk_the_demo(browser, out)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    reader.join(5)
    out = "".join(lines)
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    assert proc.returncode == 0, stderr
    assert re.search(r"Loggers: Modbus TCP 127\.0\.0\.1:\d+, RTU on /dev/pts/\d+", out)
    assert "cr-03: unit   3  xy-md02           compressor_failure" in out
    # Alerts are printed as the cloud stored them: the trip loggers -> gateway -> MQTT -> cloud worked.
    assert re.search(r"ALERT raised +critical temperature\.high: cr-03 above 8\.0 °C", out)
    assert "siren ON" in out and "stack light ON" in out
    # The story, told in chapters as the scenario reached them, from the site to its end.
    chapters = re.findall(r"^STORY \d\d:\d\d (.{20})", out, re.MULTILINE)
    assert len(chapters) == 8, chapters
    assert chapters[0].startswith("A small GDP site") and chapters[-1].startswith("That is the story")
    tour = re.findall(r"^  TOUR (\d+)\. .+, as (\w+): http", out, re.MULTILINE)
    assert [n for n, _ in tour] == [str(n) for n in range(1, 10)], tour
    ingested = [int(n) for n in re.findall(r"ingested (\d+) readings", out)]
    assert ingested and ingested[-1] > 100
    # The demo enrols its gateway as an operator would; the cloud refuses nothing from it.
    assert "Enrolled demo-gw-01 for site" in out
    assert "Catalog: 2 temperature classes, 5 products, 6 lots; INS-3 lot L2026-08 recalled by rico" in out
    # QA signed his approval of the QA manager's change to the cold class (a second person, never the author).
    approved = (r"APPROVE  Quentin QA signed 'approved' on Marta QA-Manager's change of temperature "
                r"class 2-8C \(audit #\d+\); \d+ more master-data changes await")  # fmt: skip
    assert re.search(approved, out), out[:6000]
    # The cloud pushed its recall list down: the recalled and the quarantined lot, held at the gateway.
    assert re.search(r"recall list v\d+ at the gateway \(2 entries\)", out), out[-2000:]
    assert re.findall(r"ingested \d+ readings \(refused (\d+)\)", out)[-1] == "0"
    assert ">>>>>" not in out + stderr  # no pymodbus hex dumps on screen
    assert "Traceback" not in stderr
    assert out.rstrip().endswith("stopped")
    assert re.search(
        r"DOCK  ASN-4711 reconciled in the cloud: complete \(completeness_verified\), 24 of 24", out
    )
    assert "line 1 VAX-10 lot L2026-10: 24/24 cases complete completeness_verified" in out
    summary = r"HISTORY lot L2026-10: 2 segments, in CR-A \(\d+ sensors\); \d+ readings"
    assert re.search(summary, out), out[-3000:]
    # QA's monthly GSP record of the room, stored with its hash; Rico's recall run of the lot.
    assert re.search(r"REPORT RPT-\d{8}-[0-9a-f]{10}: monthly record of CR-A for \d{4}-\d\d so far", out)
    ran = r"RECALL recall-\S+ class II by rico: lot L2026-10 recalled, 0 customers to tell .* CR-A 1 pallet"
    assert re.search(ran, out), out[-3000:]
