"""The queries inside Grafana dashboards, made runnable (template variables substituted)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.stack import STACK_DIR

EXCLUSIONS_FILE = STACK_DIR / "dashboard-exclusions.yaml"
RANGE_VARIABLES = ("__rate_interval", "__interval", "__range", "__auto_interval", "interval", "resolution")
_MATCHER_WITH_VARIABLE = re.compile(r'(\w+)\s*(=~|!~|=|!=)\s*"([^"]*\$[^"]*)"')
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard: str  # the dashboard's key (its file name without .json)
    panel: str
    expr: str
    datasource_type: str  # prometheus or loki


def panel_queries(dashboard_key: str, dashboard: dict) -> list[PanelQuery]:
    """Every expr target of every panel, rows' nested panels included."""
    out = []
    for panel in _panels(dashboard.get("panels") or dashboard.get("rows") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            ds = target.get("datasource") or panel.get("datasource") or {}
            ds_type = ds.get("type", "") if isinstance(ds, dict) else str(ds)
            kind = "loki" if "loki" in ds_type.lower() else "prometheus"
            out.append(PanelQuery(dashboard_key, panel.get("title") or f"panel {panel.get('id')}", expr, kind))
    return out


def _panels(items: list) -> list[dict]:
    for item in items:
        yield item
        yield from _panels(item.get("panels") or [])


def runnable(expr: str, datasource_type: str = "prometheus") -> str:
    """Substitute template variables: ranges become 5m, matchers on a variable match anything.

    "Anything" is `.*` in PromQL (it keeps series without the label, like the primary's own,
    which carry no cluster label) but `.+` in LogQL, which refuses a selector that can match empty.
    """
    anything = ".+" if datasource_type == "loki" else ".*"

    def matcher(m: re.Match) -> str:
        label, _op, value = m.groups()
        return f'{label}=~"{anything}"' if value.strip("$") else m.group(0)

    expr = _MATCHER_WITH_VARIABLE.sub(matcher, expr)

    def variable(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return "5m" if name in RANGE_VARIABLES else anything

    return _VARIABLE.sub(variable, expr)


@dataclass(frozen=True)
class Exclusion:
    dashboard: str
    panel: str
    reason: str


def exclusions(path: Path = EXCLUSIONS_FILE) -> list[Exclusion]:
    """Panels whose queries may return no data, each with the reason why."""
    if not path.exists():
        return []
    return [Exclusion(**entry) for entry in (yaml.safe_load(path.read_text()) or {}).get("exclusions") or []]
