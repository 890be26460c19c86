"""A real browser for page tests: Debian's Chromium driven by playwright, and the cloud's web app served
by uvicorn on a free port, reading and writing through engines of its own as the service does.

Screenshots go under ``build/screenshots/`` for a person to look at.  Tests using ``browser`` skip when
playwright or Chromium is missing (a developer's laptop), never fail for it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from tests.rig.people import PASSWORD
from tests.rig.ports import free_port

__all__ = ["CHROMIUM", "SHOTS", "browser", "serve_web_app", "shot", "sign_in"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module (tests/conftest.py offers it to every module; starting one costs
    about a second).  Not per session: playwright's sync API keeps an event loop running in the main
    thread while it is open, so every later test that calls ``asyncio.run`` (the uplink's, the
    gateway's) would fail with "cannot be called from a running event loop"."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def serve_web_app(engine: Engine, db_url: str) -> Iterator[str]:
    """The web app on a free port over ``db_url`` (writing through ``engine``); its URL."""
    from coldgate.cloud.db.engine import make_engine

    port = free_port()
    reader = make_engine(db_url)
    app = create_web_app(reader, ApiTokens(()), writer=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        reader.dispose()


def sign_in(page: Any, site: str, login: str) -> None:
    page.goto(site + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site + "/")


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
