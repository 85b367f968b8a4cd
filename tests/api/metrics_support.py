"""Reading /metrics the way Prometheus does: prometheus-client's own text-format parser."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

PASSWORD = "Sprout#2026pw"
ADMIN_TOKEN = "metrics-tests-admin-token-0123456789"

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent."""
    return series.get((name, frozenset(labels.items())), 0.0)


def scrape(base_url: str, headers: Mapping[str, str] | None = None) -> Series:
    """GET /metrics as a local client (no forwarding headers) and parse it."""
    r = httpx.get(base_url + "/metrics", headers=dict(headers or {}), timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def server_env(data_dir: Path, **extra: str | None) -> dict[str, str | None]:
    return {
        "SPROUTGATE_DATA_DIR": str(data_dir),
        "SPROUTGATE_DATABASE_URL": None,  # None: never inherit one from the environment
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_METRICS_TOKEN": None,
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,  # so no first-start notice is printed
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "PROMETHEUS_MULTIPROC_DIR": None,
        **extra,
    }
