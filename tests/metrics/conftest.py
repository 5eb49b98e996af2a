"""Metrics on: the fast queue, deliveries inline, the scrape at ``/metrics``; and a reader of scrapes.

Counters and histograms live for the whole test process (as in production), so tests compare a scrape
after with a scrape before, never an absolute count.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.shop import FAST_QUEUE

METRICS_PATH = "/metrics"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {**FAST_QUEUE, "DISCORD_ROLES_METRICS_PATH": METRICS_PATH}


class Scrape:
    """One scrape's samples: ``scrape.value("name", label=value, ...)`` sums the samples that match."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(key) == want for key, want in labels.items())
        )


def scrape(client: Any, **headers: str) -> Scrape:
    response = client.get(METRICS_PATH, headers=headers)
    assert response.status_code == 200, f"the scrape answered {response.status_code}: {response.text}"
    return Scrape(response.get_data(as_text=True))
