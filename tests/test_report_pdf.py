"""Reports print: ``render_pdf`` lays out HTML with page numbers and a footer, ``svg_chart`` draws
series against a class's limits with breaks at gaps, and the PDF, rasterised by poppler, shows them.

The PNGs land in ``build/screenshots/`` for a person to look at (never committed)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from coldgate.cloud.reports.pdf import (
    ReportFetchRefused,
    content_sha256,
    footer_text,
    render_pdf,
    report_html,
)
from coldgate.cloud.reports.svg_chart import svg_chart

SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
START = int(datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC).timestamp() * 1000)
HOUR = 3_600_000


def _week() -> dict[str, list[tuple[int, float | None]]]:
    """A week of hourly means with an excursion on day 3 and a twelve-hour hole on day 5."""
    mean: list[tuple[int, float | None]] = []
    for h in range(7 * 24):
        if 4 * 24 <= h < 4 * 24 + 12:
            continue
        value = 5.0 + 1.5 * ((h % 24) - 12) / 12
        if 2 * 24 + 10 <= h < 2 * 24 + 14:
            value = 9.5
        mean.append((START + h * HOUR, value))
    return {"mean": mean, "max": [(ts, v + 0.4) for ts, v in mean if v is not None]}


def _png(pdf: bytes, tmp_path: Path, name: str) -> Path:
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler's pdftoppm is not installed")
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", source, SHOTS / name], check=True)
    found = sorted(SHOTS.glob(f"{name}-*1.png"))
    assert found, f"pdftoppm made no PNG of {name}"
    return found[0]


def test_the_chart_breaks_at_gaps_and_draws_the_limits() -> None:
    svg = svg_chart(_week(), start_ms=START, end_ms=START + 7 * 24 * HOUR, unit="°C", low=2.0, high=8.0,
                    unmonitored=[(START + 96 * HOUR, START + 108 * HOUR)])  # fmt: skip
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    # Two lines per series: the twelve-hour hole cuts each in two.
    assert svg.count("<path ") == 4
    assert "high 8.0 °C" in svg and "low 2.0 °C" in svg and "not monitored" in svg
    assert "01 Nov" in svg and "time (UTC)" in svg
    assert svg == svg_chart(_week(), start_ms=START, end_ms=START + 7 * 24 * HOUR, unit="°C", low=2.0,
                            high=8.0, unmonitored=[(START + 96 * HOUR, START + 108 * HOUR)])  # fmt: skip


def test_a_none_breaks_the_line_and_an_empty_window_is_refused() -> None:
    points = [(START, 1.0), (START + HOUR, 2.0), (START + 2 * HOUR, None), (START + 3 * HOUR, 3.0),
              (START + 4 * HOUR, 3.5)]  # fmt: skip
    svg = svg_chart({"t": points}, start_ms=START, end_ms=START + 5 * HOUR)
    assert svg.count("<path ") == 2
    assert "<path" not in svg_chart({"t": []}, start_ms=START, end_ms=START + HOUR)
    with pytest.raises(ValueError, match="empty"):
        svg_chart({}, start_ms=START, end_ms=START)


def test_a_report_loads_nothing_from_outside() -> None:
    with pytest.raises(ReportFetchRefused):
        render_pdf('<p>x</p><img src="http://127.0.0.1:9/logo.png">')
    with pytest.raises(ReportFetchRefused):
        render_pdf('<link rel="stylesheet" href="file:///etc/hostname"><p>x</p>')


def test_a_pdf_with_a_chart_prints(tmp_path: Path) -> None:
    chart = svg_chart(_week(), start_ms=START, end_ms=START + 7 * 24 * HOUR, unit="°C", low=2.0, high=8.0,
                      unmonitored=[(START + 96 * HOUR, START + 108 * HOUR)], title="Cold room 1")  # fmt: skip
    generated = datetime.datetime(2026, 12, 1, 5, 0, tzinfo=datetime.UTC)
    footer = footer_text(content_sha256({"week": 1}), generated)
    html = report_html("report_base.html", title="Chart check", heading="Chart check", chart=chart)
    pdf = render_pdf(html, footer=footer)
    assert pdf.startswith(b"%PDF")
    png = _png(pdf, tmp_path, "report-pdf-chart")
    with Image.open(png) as image:
        grey = image.convert("L")
        assert grey.size[0] > 400 and grey.size[1] > 600  # A4 at 60 dpi: 496 x 702
        dark = sum(1 for value in grey.getdata() if value < 200)
        assert dark > 2000, "the page is blank"
        # Something is printed in the bottom margin: the footer and the page number.
        footer_band = grey.crop((0, grey.size[1] - 40, grey.size[0], grey.size[1]))
        assert min(footer_band.getdata()) < 128
