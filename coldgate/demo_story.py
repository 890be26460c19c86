"""What the demo says to a newcomer: the guided tour (which page, as whom) and, with ``--story``, the
narrator's chapters as the scenario reaches them.

Kept apart from the site's wiring (``demo``) and the dock's beats (``demo_dock``) so the words can be
read, and changed, in one place.  The tour lines have one fixed shape, ``TOUR n. what, as login: URL``,
that the demo test's browser walk follows (``tests/rig/demo_tour.py``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import click

from coldgate.demo_people import hhmm

__all__ = ["Narrator", "TourStop", "print_tour", "tour"]

#: Scenario seconds at which the narrator closes the story (three minutes at the default ``--speed 60``).
STORY_END_S = 10_800.0


@dataclass(frozen=True)
class TourStop:
    what: str
    login: str
    url: str


def tour(
    api: str, site: str, door: str, note: str, order: str | None, lot: tuple[str, str]
) -> list[TourStop]:
    """The pages worth opening, in the story's order, each as the person who would open it."""
    product, number = lot
    stops = [
        TourStop("the overview: each logger's tile, red when it is out of limits", "marta", f"{api}/"),
        TourStop("QA cases: the excursion's case, acknowledge it and sign QA's decision", "quentin",
                 f"{api}/dashboard/cases"),
        TourStop(f"dock door {door}: the pallet in, the recalled case stopped", "dominik",
                 f"{api}/dashboard/dock/{site}/{door}"),
        TourStop("receiving note ASN-4711", "dominik", f"{api}/dashboard/documents/{note}"),
    ]  # fmt: skip
    if order is not None:
        stops.append(TourStop("dispatch order SO-0815 and its refused case", "dominik",
                              f"{api}/dashboard/documents/{order}"))  # fmt: skip
    stops += [
        TourStop(f"lot {number}'s environmental history (PDF, CSV, EPCIS 2.0)", "rico",
                 f"{api}/dashboard/lots/{product}/{number}/history"),
        TourStop(f"recalls: the run of lot {number}", "rico", f"{api}/dashboard/recalls"),
        TourStop("the monthly GSP record", "marta", f"{api}/dashboard/reports"),
        TourStop("the audit trail: who did what and why", "ada", f"{api}/dashboard/audit"),
    ]  # fmt: skip
    return stops


def print_tour(stops: list[TourStop], mailbox: str) -> None:
    click.echo("Guided tour: open these pages in a browser, signed in as the person named (passwords above):")
    for n, stop in enumerate(stops, 1):
        click.echo(f"  TOUR {n}. {stop.what}, as {stop.login}: {stop.url}")
    click.echo(f"  and the e-mail QA receives: {mailbox} (one .eml file a message; MAIL lines below)")


class Narrator:
    """``--story``'s voice: each chapter once, stamped with the scenario time, wrapped for a terminal.
    Silent without ``--story`` (the events' own lines tell the story then)."""

    def __init__(self, on: bool, scenario_now: Callable[[], float]) -> None:
        self.on, self.scenario_now = on, scenario_now
        self.told: set[str] = set()

    def tell(self, text: str, key: str | None = None) -> None:
        """Print the chapter ``text`` (once per ``key``, default the text itself)."""
        key = key or text
        if not self.on or key in self.told:
            return
        self.told.add(key)
        lines = textwrap.wrap(text, width=100)
        click.echo(f"STORY {hhmm(self.scenario_now())} {lines[0]}")
        for line in lines[1:]:
            click.echo(f"            {line}")

    def over(self) -> bool:
        return self.scenario_now() >= STORY_END_S
