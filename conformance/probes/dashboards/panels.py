"""The queries inside Grafana dashboards, made runnable the way Grafana 13.2 runs them on load.

Template variables take their value from the dashboard's own `templating` (conformance.probes.dashboards.templating);
the built-in interval and range variables become the durations Grafana's backend computes
(grafana/grafana pkg/promlib/models/query.go and pkg/tsdb/loki/parse_query.go; docs/real-stack.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conformance.core import yamltext
from conformance.core.stack import STACK_DIR
from conformance.probes.dashboards.templating import Resolution, datasource_type, interpolate, query_result_texts

EXCLUSIONS_FILE = STACK_DIR / "dashboard-exclusions.yaml"
DEFAULT_RANGE_S = 6 * 3600  # Grafana's default time range, now-6h
DEFAULT_SCRAPE = 15.0  # the Prometheus datasource's timeInterval when unset (promlib calculateRateInterval)
MAX_DATA_POINTS = 1500  # intervalv2.DefaultRes: the backend's resolution when a request names none
SAFE_RESOLUTION = 11000  # promlib safeResolution: at most 11,000 points per series
_RELATIVE = re.compile(r"now-(\d+)([smhdwMy])")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
_EMPTY_LINE_FILTER = re.compile(r'\s*\|[=~]\s*(""|``)')


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard: str  # the dashboard's key (its file name without .json)
    panel: str
    expr: str
    datasource_type: str  # prometheus or loki
    min_interval: str = ""  # the target's or panel's "Min interval" (query option `interval`)


def panel_queries(dashboard_key: str, dashboard: dict) -> list[PanelQuery]:
    """Every expr target of every panel, rows' nested panels included; hidden targets are skipped, as Grafana does."""
    out = []
    for panel in _panels(dashboard.get("panels") or dashboard.get("rows") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            ds = target.get("datasource") or panel.get("datasource")
            interval = str(target.get("interval") or panel.get("interval") or "")
            out.append(PanelQuery(dashboard_key, panel.get("title") or f"panel {panel.get('id')}", expr,
                                  datasource_type(ds), interval))
    return out


def _panels(items: list):
    for item in items:
        yield item
        yield from _panels(item.get("panels") or [])


def time_range_s(dashboard: dict) -> float:
    """The dashboard's own time range (`time.from` now-30m ... now), in seconds."""
    m = _RELATIVE.fullmatch(str((dashboard.get("time") or {}).get("from", "")))
    return int(m.group(1)) * _UNITS[m.group(2)] if m else DEFAULT_RANGE_S


def seconds(text: str) -> float | None:
    """A Grafana interval string (15s, 1m, 500ms) in seconds; None if it is not one."""
    m = re.fullmatch(r"<?(\d+(?:\.\d+)?)(ms|[smhdwMy])>?", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def builtins(range_s: float, datasource: str, scrape_interval: str = "", min_interval: str = "",
             max_data_points: int = MAX_DATA_POINTS) -> dict[str, str]:
    """$__interval, $__rate_interval, $__range and their _ms/_s forms, as Grafana's backend computes them.

    interval = max(round(range / maxDataPoints), min interval), min interval = the query's own, else the
    datasource's scrape interval, else 15 s (Prometheus) or 1 ms (Loki); rate interval =
    max(interval + scrape interval, 4 * scrape interval).
    """
    own = min_interval if seconds(min_interval) is not None else ""
    scrape = seconds(own or scrape_interval) or (DEFAULT_SCRAPE if datasource == "prometheus" else 0.001)
    raw_ms = range_s * 1000 / max_data_points
    interval_ms = scrape * 1000 if raw_ms < scrape * 1000 else round_interval_ms(raw_ms)
    interval_ms = max(interval_ms, round_interval_ms(range_s * 1000 / SAFE_RESOLUTION))
    rate_scrape = seconds(own or scrape_interval) or DEFAULT_SCRAPE
    rate_ms = max(interval_ms + rate_scrape * 1000, 4 * rate_scrape * 1000)
    range_rounded = round(range_s)
    out = {
        "__interval": format_interval(interval_ms), "__interval_ms": str(int(interval_ms)),
        "__range": f"{range_rounded}s", "__range_s": str(range_rounded), "__range_ms": str(int(range_s * 1000)),
    }
    if datasource == "prometheus":
        out |= {"__rate_interval": go_duration(rate_ms), "__rate_interval_ms": str(int(rate_ms))}
    else:
        out["__auto"] = format_interval(interval_ms)  # a range query's step
    return out


def runnable(query: PanelQuery, resolution: Resolution, range_s: float, scrape_interval: str = "") -> str:
    """The query with every template variable substituted, as Grafana would send it.

    In LogQL a line filter left empty (`|= "$search"` with an empty textbox) is dropped: Loki keeps every line
    for it, and dropping it keeps the query valid where a filter must have a value.
    """
    expr = interpolate(query.expr, resolution.values,
                       builtins(range_s, query.datasource_type, scrape_interval, query.min_interval),
                       query.datasource_type)
    return _EMPTY_LINE_FILTER.sub("", expr) if query.datasource_type == "loki" else expr


def step_s(query: PanelQuery, range_s: float, scrape_interval: str = "") -> float:
    """The step of the range query Grafana runs: the interval ($__interval)."""
    return int(builtins(range_s, query.datasource_type, scrape_interval, query.min_interval)["__interval_ms"]) / 1000


def round_interval_ms(ms: float) -> float:
    """rangeutil.roundInterval (@grafana/data): a raw interval snapped to a readable one."""
    for limit, value in ((10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
                         (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
                         (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
                         (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
                         (16200000, 10800000), (32400000, 21600000), (86400000, 43200000), (604800000, 86400000),
                         (1814400000, 604800000), (3628800000, 2592000000)):
        if ms < limit:
            return value
    return 31536000000


def format_interval(ms: float) -> str:
    """gtime.FormatInterval: the largest whole unit (1d, 2h, 1m, 30s, 500ms)."""
    for unit, size in (("y", 31536000000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            return f"{int(ms // size)}{unit}"
    return "1ms"


def go_duration(ms: float) -> str:
    """Go's time.Duration.String() for whole milliseconds (1m0s, 1m15s, 500ms): the form of $__rate_interval."""
    ms = int(ms)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    h, rest = divmod(ms, 3600000)
    m, rest = divmod(rest, 60000)
    s = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return (f"{h}h{m}m" if h else f"{m}m" if m else "") + s


class PrometheusVariables:
    """label_values() and query_result() answered by a Prometheus (conformance.clients.prometheus)."""

    def __init__(self, prometheus) -> None:
        self.prometheus = prometheus

    def label_values(self, label: str, selector: str | None, start: float, end: float) -> list[str]:
        series = self.prometheus.series([selector or f'{{{label}!=""}}'], start, end)
        return sorted({s[label] for s in series if s.get(label)})

    def query_result(self, expr: str, time: float) -> list[str]:
        return query_result_texts(self.prometheus.query_data(expr, time))


class LokiVariables:
    """label_values() answered by a Loki (conformance.clients.loki); Loki has no query_result()."""

    def __init__(self, loki) -> None:
        self.loki = loki

    def label_values(self, label: str, selector: str | None, start: float, end: float) -> list[str]:
        return sorted(self.loki.label_values(label, start, end, query=selector))

    def query_result(self, expr: str, time: float) -> list[str]:
        raise ValueError("Loki has no query_result()")


@dataclass(frozen=True)
class Exclusion:
    dashboard: str
    panel: str
    reason: str


def exclusions(path: Path = EXCLUSIONS_FILE) -> list[Exclusion]:
    """Panels whose queries may return no data, each with the reason why."""
    if not path.exists():
        return []
    return [Exclusion(**entry) for entry in (yamltext.parse(path.read_text()) or {}).get("exclusions") or []]
