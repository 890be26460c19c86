"""The cloud service: ingest, storage, alerts, approvals, reports and the API."""
