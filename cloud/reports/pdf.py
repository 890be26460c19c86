"""HTML + CSS to PDF for every report (weasyprint), and the Jinja2 templates they are written in.

Why weasyprint: a report is laid out once, as HTML and CSS the team already writes for the web app, and
printed on A4 with running page numbers ("page X of Y") and a footer through CSS ``@page`` margin boxes;
no drawing API to learn (reportlab), no browser to drive.  Why a fetcher that refuses everything: a
report must print the same in ten years and on a machine without a network, so nothing it shows may come
from elsewhere (no CDN font, no remote image): charts are inline SVG (``svg_chart``), fonts the system's
DejaVu.  A template that tries to load something fails loudly instead of printing without it.

Templates are ``cloud/web/templates/report_*.html``, the web app's template folder, rendered with a
Jinja2 environment of their own (autoescaping like the web app's) so that the API's routes can print a
report without importing the pages (the pages build on the API, never the other way round).

Usage::

    html = report_html("report_monthly.html", title=..., rows=..., chart=svg_chart(...))
    pdf = render_pdf(html, footer=footer_text(content_sha256(data), generated_at))
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

import rfc8785
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = [
    "PDF",
    "TEMPLATES",
    "ReportFetchRefused",
    "content_sha256",
    "footer_text",
    "render_pdf",
    "report_html",
]

#: The content type of what ``render_pdf`` returns.
PDF = "application/pdf"
#: The web app's template folder, where the ``report_*.html`` templates live.
TEMPLATES = Path(__file__).resolve().parents[1] / "web" / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), keep_trailing_newline=True
)

#: The page: A4, margins wide enough for the running footer, page numbers bottom right.
_PAGE_CSS = """
@page {
  size: A4;
  margin: 16mm 14mm 20mm 14mm;
  @bottom-left {
    content: %(footer)s; width: 80%%;
    font-family: "DejaVu Sans", sans-serif; font-size: 6.5pt; color: #444;
  }
  @bottom-right {
    content: "page " counter(page) " of " counter(pages); width: 20%%; text-align: right;
    font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #444;
  }
}
html { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; }
"""


class ReportFetchRefused(ValueError):
    """A report's HTML asked for something outside itself (a URL, a file): reports load nothing."""


def _fetcher() -> Any:
    """A weasyprint fetcher that serves ``data:`` URIs (the document's own bytes) and refuses the rest,
    fatally: anything else would make the PDF depend on where it was printed."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",), fail_on_errors=True)


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal (quotes, backslashes and line ends escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ").replace("\r", "")
    return f'"{escaped}"'


def report_html(template: str, **context: Any) -> str:
    """The HTML of ``template`` (a file of ``cloud/web/templates``, e.g. ``report_monthly.html``)."""
    return _env.get_template(template).render(**context)


def render_pdf(html: str, *, footer: str = "") -> bytes:
    """``html`` printed on A4 with ``footer`` bottom left and "page X of Y" bottom right of every page.

    The HTML's own CSS (a ``<style>`` in the template) comes after the page rules, so a template may
    change margins or fonts.  Anything the HTML links to outside itself (``http:``, ``file:``) raises
    ``ReportFetchRefused`` (a relative path has no base and loads nothing): a report carries all it shows.
    """
    from weasyprint import CSS, HTML  # imported here: pango loads at import, only the printing pays
    from weasyprint.urls import FatalURLFetchingError

    fetcher = _fetcher()
    try:
        page = CSS(string=_PAGE_CSS % {"footer": _css_string(footer)}, url_fetcher=fetcher)
        return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(stylesheets=[page])
    except FatalURLFetchingError as exc:  # a BaseException: turned into an error callers can catch
        raise ReportFetchRefused(f"a report loads nothing from outside itself: {exc}") from None


def content_sha256(content: Any) -> str:
    """SHA-256 (hex) of ``content`` as canonical JSON (RFC 8785): the hash a report's footer shows.

    The figures are hashed, not the file (a file cannot carry its own hash): anyone holding the report's
    JSON can recompute it, and the same figures give the same hash whenever they are printed.
    """
    return hashlib.sha256(rfc8785.dumps(content)).hexdigest()


def footer_text(report_sha256: str, generated_at: datetime.datetime, *, label: str = "Coldgate") -> str:
    """The running footer: "<label> · content SHA-256 <hash> · generated 2026-12-07 06:00:00 UTC"."""
    when = generated_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{label} · content SHA-256 {report_sha256} · generated {when}"
