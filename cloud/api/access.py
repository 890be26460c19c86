"""Which permission each route needs: the one table of the API's access rules.

A route is (method, path template).  Its entry is a permission name from
``cloud/identity/roles.py``, or ``PUBLIC`` (no credentials: the health check,
signing in) or ``SIGNED_IN`` (anyone signed in, whatever their roles: who am
I, signing out).  ``create_app`` refuses to build an app with a route this
table does not name, or an entry no route has, so a new route cannot ship
without a decision about who may call it; the role-matrix test reads the
OpenAPI document and calls every route with every role against this table.
"""

from __future__ import annotations

from fastapi import FastAPI

from coldgate.cloud.identity.roles import PERMISSIONS

__all__ = [
    "PAGES", "PUBLIC", "RECORD_CHECKED", "ROUTES", "SIGNED_IN", "check_declared", "check_pages", "required",
]  # fmt: skip

PUBLIC = "(public)"
SIGNED_IN = "(signed in)"

#: Writes a reader may reach because the record itself decides, per request, which permission the write
#: needs, and audits every refusal: a QA case's move (``cloud/alerts/case_flow.py``: acknowledging asks
#: ``alerts.acknowledge``, closing ``qa.review``...), so a viewer's attempt is on the record, not lost.
RECORD_CHECKED = frozenset({("POST", "/cases/{case_id}/moves"), ("POST", "/dashboard/cases/{case_id}/move")})

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): "gateways.read",
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/logout"): SIGNED_IN,
    ("GET", "/auth/me"): SIGNED_IN,
    ("GET", "/auth/tokens"): "tokens.own",
    ("POST", "/auth/tokens"): "tokens.own",
    ("DELETE", "/auth/tokens/{token_id}"): "tokens.own",
    ("GET", "/tokens"): "users.manage",
    ("POST", "/tokens/machine"): "users.manage",
    ("DELETE", "/tokens/{token_id}"): "users.manage",
    ("GET", "/users"): "users.manage",
    ("POST", "/users"): "users.manage",
    ("GET", "/users/{login}"): "users.manage",
    ("POST", "/users/{login}/disable"): "users.manage",
    ("POST", "/users/{login}/unlock"): "users.manage",
    ("PUT", "/users/{login}/roles"): "users.manage",
    ("POST", "/users/{login}/password"): "users.manage",
    ("GET", "/audit"): "audit.read",
    ("GET", "/audit.csv"): "audit.read",
    ("GET", "/gateways"): "gateways.read",
    ("GET", "/gateways/unknown"): "gateways.read",
    ("GET", "/gateways/enrolments"): "gateways.read",
    ("GET", "/gateways/{gateway}"): "gateways.read",
    ("GET", "/gateways/{gateway}/downlink"): "gateways.read",
    ("GET", "/gateways/{gateway}/topology"): "gateways.read",
    ("POST", "/gateways/{gateway}/topology/accept"): "catalog.manage",
    ("GET", "/overview"): "readings.read",
    ("GET", "/sensors"): "readings.read",
    ("GET", "/gateways/{gateway}/sensors/{sensor}/readings"): "readings.read",
    ("GET", "/gateways/{gateway}/sensors/{sensor}/readings.csv"): "readings.read",
    ("GET", "/gaps"): "readings.read",
    ("GET", "/alerts"): "alerts.read",
    ("GET", "/cases"): "alerts.read",
    ("GET", "/cases/{case_id}"): "alerts.read",
    ("POST", "/cases/{case_id}/moves"): "alerts.read",  # see RECORD_CHECKED
    ("POST", "/cases/{case_id}/notes"): "alerts.acknowledge",
    ("GET", "/quarantine"): "catalog.read",
    ("GET", "/dead-letters"): "dead_letters.read",
    ("GET", "/dead-letters/budgets"): "dead_letters.read",
    ("GET", "/sites"): "sites.read",
    ("PUT", "/sites/{site}/time-zone"): "settings.manage",
    ("GET", "/catalog/temperature-classes"): "catalog.read",
    ("GET", "/catalog/temperature-classes/{name}"): "catalog.read",
    ("GET", "/catalog/temperature-classes/{name}/history"): "catalog.read",
    ("PUT", "/catalog/temperature-classes/{name}"): "catalog.manage",
    ("GET", "/catalog/products"): "catalog.read",
    ("GET", "/catalog/products/{product}"): "catalog.read",
    ("GET", "/catalog/products/{product}/history"): "catalog.read",
    ("PUT", "/catalog/products/{product}"): "catalog.manage",
    ("GET", "/catalog/lots"): "catalog.read",
    ("GET", "/catalog/products/{product}/lots/{lot}"): "catalog.read",
    ("GET", "/catalog/products/{product}/lots/{lot}/history"): "catalog.read",
    ("PUT", "/catalog/products/{product}/lots/{lot}"): "catalog.manage",
    ("POST", "/catalog/products/{product}/lots/{lot}/release"): "qa.decide",
    ("POST", "/catalog/products/{product}/lots/{lot}/quarantine"): "qa.decide",
    ("POST", "/catalog/products/{product}/lots/{lot}/reject"): "qa.decide",
    ("POST", "/catalog/products/{product}/lots/{lot}/recall"): "recall.run",
    ("GET", "/catalog/locations"): "catalog.read",
    ("GET", "/catalog/sites/{site}/locations/{location}/history"): "catalog.read",
    ("PUT", "/catalog/sites/{site}/locations/{location}"): "catalog.manage",
    ("GET", "/catalog/placements"): "catalog.read",
    ("POST", "/catalog/placements"): "catalog.manage",
    ("GET", "/catalog/calibrations"): "catalog.read",
    ("POST", "/catalog/calibrations"): "catalog.manage",
    ("POST", "/catalog/products/{product}/lots/{lot}/serials"): "catalog.manage",
    ("GET", "/catalog/products/{product}/lots/{lot}/serials"): "catalog.read",
    ("GET", "/catalog/products/{product}/serials/{serial}"): "catalog.read",
    ("POST", "/catalog/import/products"): "catalog.manage",
    ("POST", "/catalog/import/lots"): "catalog.manage",
    ("POST", "/catalog/import/serials"): "catalog.manage",
    # Approving a master-data change is a QA decision, signed, never by its author (change_approval.py).
    ("GET", "/catalog/changes"): "catalog.read",
    ("POST", "/catalog/changes/{seq}/approve"): "qa.decide",
    ("GET", "/documents"): "documents.read",
    ("POST", "/documents"): "documents.manage",
    ("POST", "/documents/import"): "documents.manage",
    ("POST", "/documents/import/epcis"): "documents.manage",
    ("GET", "/documents/{document_id}"): "documents.read",
    ("GET", "/documents/{document_id}/history"): "documents.read",
    ("PUT", "/documents/{document_id}"): "documents.manage",
    ("POST", "/documents/{document_id}/release"): "documents.manage",
    ("POST", "/documents/{document_id}/draft"): "documents.manage",
    ("POST", "/documents/{document_id}/start"): "documents.manage",
    ("POST", "/documents/{document_id}/complete"): "documents.manage",
    ("POST", "/documents/{document_id}/close"): "documents.manage",
    ("GET", "/documents/{document_id}/reconciliation"): "documents.read",
    ("POST", "/documents/{document_id}/discrepancies/accept"): "qa.decide",
    ("GET", "/doors/{site}/{door}/unbound"): "documents.read",
    # Custody is made of documents and their bindings, and names the customers: read with them.
    ("GET", "/lots/{gtin}/{lot}/custody"): "documents.read",
    ("GET", "/units/{unit_id}/custody"): "documents.read",
    # Batch history: read with the custody it is made of (cloud/api/routes/history.py).
    ("GET", "/lots/{gtin}/{lot}/history"): "documents.read",
    ("GET", "/lots/{gtin}/{lot}/history.csv"): "documents.read",
    ("GET", "/lots/{gtin}/{lot}/history.pdf"): "documents.read",
    ("GET", "/lots/{gtin}/{lot}/history.epcis.json"): "documents.read",
    ("GET", "/units/{unit_id}/history"): "documents.read",
    ("GET", "/units/{unit_id}/history.csv"): "documents.read",
    ("GET", "/units/{unit_id}/history.pdf"): "documents.read",
    ("POST", "/doors/{site}/{door}/unbound/assign"): "documents.manage",
    # Periodic GSP reports (cloud/api/routes/reports.py): read by every role that reads the records they
    # are made of; generating one stores it for good, so it is QA's (qa and qa_manager).
    ("GET", "/reports"): "alerts.read",
    ("GET", "/reports/{report_id}"): "alerts.read",
    ("GET", "/reports/{report_id}/meta"): "alerts.read",
    ("POST", "/reports/monthly"): "qa.decide",
    ("POST", "/reports/excursions"): "qa.decide",
    ("POST", "/reports/calibration"): "qa.decide",
    # Recall runs: read with the custody they are derived from; run by the recall coordinator.
    ("GET", "/recalls"): "documents.read",
    ("POST", "/recalls"): "recall.run",
    ("GET", "/recalls/{recall_id}"): "documents.read",
    ("GET", "/recalls/{recall_id}/customers.csv"): "documents.read",
    ("GET", "/recalls/{recall_id}/customers.pdf"): "documents.read",
    ("POST", "/recalls/{recall_id}/customers/{customer}/notified"): "recall.run",
    ("POST", "/recalls/{recall_id}/customers/{customer}/acknowledged"): "recall.run",
    ("POST", "/recalls/{recall_id}/returns"): "recall.run",
    ("POST", "/recalls/{recall_id}/close"): "recall.run",
    # KPIs (cloud/api/routes/kpis.py): derived from the records every reading role sees.
    ("GET", "/kpis"): "alerts.read",
    ("GET", "/kpis.csv"): "alerts.read",
}


#: The browser pages (``cloud/web/pages.py``), kept out of the OpenAPI document; the same rules.
PAGES: dict[tuple[str, str], str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/"): "readings.read",
    ("GET", "/overview/tiles"): "readings.read",
    ("GET", "/dashboard/alerts"): "alerts.read",
    ("GET", "/dashboard/gaps"): "readings.read",
    ("GET", "/dashboard/audit"): "audit.read",
    ("GET", "/dashboard/sensor"): "readings.read",
    ("GET", "/dashboard/gateways"): "gateways.read",
    ("GET", "/dashboard/topology"): "gateways.read",
    ("POST", "/dashboard/topology/{gateway}/accept"): "catalog.manage",
    ("GET", "/dashboard/catalog"): "catalog.read",
    ("GET", "/dashboard/catalog/{kind}"): "catalog.read",
    ("GET", "/dashboard/catalog/changes"): "catalog.read",
    ("POST", "/dashboard/catalog/changes/{seq}/approve"): "qa.decide",
    ("GET", "/dashboard/cases"): "alerts.read",
    ("GET", "/dashboard/cases/{case_id}"): "alerts.read",
    ("POST", "/dashboard/cases/{case_id}/move"): "alerts.read",  # the case decides, as RECORD_CHECKED
    ("POST", "/dashboard/cases/{case_id}/notes"): "alerts.acknowledge",
    ("GET", "/dashboard/quarantine"): "catalog.read",
    ("GET", "/dashboard/documents"): "documents.read",
    ("GET", "/dashboard/documents/{document_id}"): "documents.read",
    ("POST", "/dashboard/documents/{document_id}/accept"): "qa.decide",
    ("GET", "/dashboard/dock/{site}/{door}"): "documents.read",
    ("GET", "/dashboard/dock/{site}/{door}/live"): "documents.read",
    ("POST", "/dashboard/dock/{site}/{door}/release"): "documents.manage",
    ("POST", "/dashboard/dock/{site}/{door}/move"): "documents.manage",
    ("POST", "/dashboard/dock/{site}/{door}/assign"): "documents.manage",
    ("GET", "/dashboard/lots/{product}/{lot}/custody"): "documents.read",
    ("GET", "/dashboard/units/{unit_id}"): "documents.read",
    ("GET", "/dashboard/lots/{product}/{lot}/history"): "documents.read",
    ("GET", "/dashboard/units/{unit_id}/history"): "documents.read",
    ("GET", "/dashboard/recalls"): "documents.read",
    ("POST", "/dashboard/recalls"): "recall.run",
    ("GET", "/dashboard/recalls/{recall_id}"): "documents.read",
    ("GET", "/dashboard/recalls/{recall_id}/print"): "documents.read",
    ("POST", "/dashboard/recalls/{recall_id}/customer"): "recall.run",
    ("POST", "/dashboard/recalls/{recall_id}/returns"): "recall.run",
    ("POST", "/dashboard/recalls/{recall_id}/close"): "recall.run",
    ("GET", "/dashboard/users"): "users.manage",
    ("POST", "/dashboard/users"): "users.manage",
    ("POST", "/dashboard/users/{login}/{change}"): "users.manage",
    ("GET", "/dashboard/reports"): "alerts.read",
    ("POST", "/dashboard/reports/monthly"): "qa.decide",
    ("POST", "/dashboard/reports/excursions"): "qa.decide",
    ("POST", "/dashboard/reports/calibration"): "qa.decide",
    ("GET", "/dashboard/kpis"): "alerts.read",
}


def required(method: str, path: str) -> str:
    """The permission (or PUBLIC / SIGNED_IN) the route or page needs; KeyError if it declares none."""
    found = ROUTES.get((method, path)) or PAGES.get((method, path))
    if found is None:
        raise KeyError(f"{method} {path}: no permission declared in cloud/api/access.py")
    return found


def check_pages(served: set[tuple[str, str]]) -> None:
    """Refuse a web app whose pages and ``PAGES`` differ, naming each difference."""
    problems = [f"{m} {p}: page without a permission in PAGES" for m, p in sorted(served - PAGES.keys())]
    problems += [f"{m} {p}: in PAGES but no such page" for m, p in sorted(PAGES.keys() - served)]
    if problems:
        raise RuntimeError("web pages out of step with cloud/api/access.py:\n" + "\n".join(problems))


def check_declared(app: FastAPI) -> None:
    """Refuse an app whose routes and this table differ, naming each difference."""
    # The OpenAPI document, not ``app.routes``: FastAPI keeps included routers as opaque wrappers, and
    # the document is what clients (and the role-matrix test) see.
    paths = app.openapi()["paths"]
    served = {(method.upper(), path) for path, item in paths.items() for method in item}
    missing = sorted(served - ROUTES.keys())
    problems = [f"{m} {p}: no permission declared in cloud/api/access.py" for m, p in missing]
    problems += [f"{m} {p}: declared but no such route" for m, p in sorted(ROUTES.keys() - served)]
    problems += [
        f"{m} {p}: {perm!r} is no permission any role holds"
        for (m, p), perm in sorted(ROUTES.items())
        if perm not in (PUBLIC, SIGNED_IN) and perm not in PERMISSIONS
    ]
    if problems:
        raise RuntimeError("API access table out of step with the routes:\n" + "\n".join(problems))
    # The shared ``authorize`` dependency marks every route as needing the bearer scheme; the document
    # (cached by FastAPI, so this edit is what clients get) says the public ones need nothing.
    for (method, path), need in ROUTES.items():
        if need == PUBLIC:
            paths[path][method.lower()]["security"] = []
