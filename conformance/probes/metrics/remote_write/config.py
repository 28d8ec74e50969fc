"""What a sender's loaded configuration says: its external labels and its scrape interval."""

from __future__ import annotations

import yaml

from conformance.clients.prometheus import PrometheusClient
from conformance.core import yamltext
from conformance.core.http import ServiceError
from conformance.core.timing import PROMETHEUS_SCRAPE, STACK

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _global(sender: PrometheusClient) -> dict:
    config = yamltext.parse(sender.config_yaml()) or {}
    return config.get("global") or {}


def external_labels(sender: PrometheusClient) -> dict[str, str]:
    """The sender's configured global.external_labels."""
    return _global(sender).get("external_labels") or {}


def scrape_interval_seconds(sender: PrometheusClient, default: float = 30.0) -> float:
    """The sender's global scrape interval (kube-prometheus-stack's default is 30 s)."""
    raw = str(_global(sender).get("scrape_interval") or "")
    return parse_duration(raw) if raw else default


def parse_duration(raw: str) -> float:
    """A Prometheus duration such as 30s, 1m or 1m30s in seconds."""
    total, number = 0.0, ""
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if raw.startswith("ms", i) else ch
        total += float(number) * UNITS[unit]
        number = ""
        i += len(unit)
    return total


def scrape_interval_of(prometheus, fallback: float = STACK.scrape) -> float:
    """The global scrape interval of the configuration this Prometheus loaded; fallback where it cannot be read."""
    if prometheus is None:
        return fallback
    try:
        return scrape_interval_seconds(prometheus, default=PROMETHEUS_SCRAPE)
    except (ServiceError, yaml.YAMLError, ValueError, KeyError, TypeError):
        return fallback
