"""Reading a Prometheus exposition back as a test sees it: each sample by name and labels.

The gateway's ``/metrics`` and the cloud's are parsed with ``prometheus_client``'s own parser, the one
a scraper agrees with, so a test asserts on what Prometheus would store, not on the text's layout.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "fetch", "samples", "scrape"]

#: (metric name, sorted label pairs) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Each sample of an exposition as (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fetch(url: str) -> str:
    """The exposition at ``url`` (no credentials: the gateway's endpoint is open on its own address)."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def scrape(listen: str) -> Samples:
    """One scrape of ``http://{listen}/metrics``, as Prometheus would make it."""
    return samples(fetch(f"http://{listen}/metrics"))
