"""What the alerting checks read: rule groups' health, the Watchdog alert, and why an alert did not arrive.

Shapes are those of Prometheus v3.14.0 (web/api/v1/api.go: RuleGroup, AlertingRule, AlertmanagerDiscovery;
notifier/metric.go) and Alertmanager v0.34.0 (api/v2/openapi.yaml; config/coordinator.go's metrics).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


from conformance.clients.alertmanager import AlertmanagerClient
from conformance.clients.prometheus import PrometheusClient
from conformance.core import yamltext
from conformance.core.exposition import parse_samples, sum_by
from conformance.core.http import ServiceError
from conformance.probes.metrics.remote_write.config import parse_duration
from conformance.core.timefmt import rfc3339_seconds

# kube-prometheus-stack 88.5.3 templates/prometheus/rules-1.14/general.rules.yaml: always firing (expr vector(1)).
WATCHDOG = "Watchdog"
# How the chart turns Prometheus' alerting towards its Alertmanager (templates/prometheus/prometheus.yaml), and how
# a remote's Prometheus is pointed at another cluster's (templates/prometheus/additionalAlertmanagerConfigs.yaml).
ALERTING_SETTING = "alertmanager.enabled: true (the Prometheus CR's alerting.alertmanagers)"
REMOTE_ALERTING_SETTING = "prometheus.prometheusSpec.additionalAlertManagerConfigs (static_configs to the primary's Alertmanager)"


@dataclass(frozen=True)
class RuleReport:
    """One read of /api/v1/rules against a start time."""

    groups: int
    rules: int
    not_evaluated: list[str]  # groups not evaluated since the start
    errors: list[str]  # "group G (file F): rule R: error", for groups evaluated since the start

    @property
    def clean(self) -> bool:
        return self.groups > 0 and not self.not_evaluated and not self.errors


def rule_report(groups: list[dict], since: float) -> RuleReport:
    """Every group evaluated after `since` (epoch seconds), every rule in it healthy (kube-prometheus tests/e2e)."""
    pending, errors, rules = [], [], 0
    for g in groups:
        rules += len(g.get("rules") or [])
        where = f"group {g.get('name')} (file {g.get('file')})"
        if rfc3339_seconds(g.get("lastEvaluation", "")) < since:
            pending.append(str(g.get("name")))
            continue
        if not g.get("rules"):
            errors.append(f"{where}: no rules")
        for r in g.get("rules") or []:
            if r.get("health") != "ok" or r.get("lastError"):
                errors.append(f"{where}: rule {r.get('name')}: health {r.get('health')}: {r.get('lastError') or '(no error text)'}")
    return RuleReport(len(groups), rules, pending, errors)


def describe_rules(report: RuleReport) -> str:
    """The state of a rule read, for a wait's last observation."""
    if report.groups == 0:
        return "no rule groups are loaded"
    if report.errors:
        return "; ".join(report.errors[:5]) + (f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else "")
    return f"{len(report.not_evaluated)} of {report.groups} groups not evaluated since the check began: " + \
        ", ".join(report.not_evaluated[:5])


def rules_not_configured(prom: PrometheusClient) -> str | None:
    """Why no rule can ever evaluate, from the configuration Prometheus loaded (no rule_files at all), or None.

    prometheus-operator v0.93.0 writes rule_files only when the Prometheus resource has a spec.ruleSelector
    (pkg/prometheus/promcfg.go appendRuleFiles); without one, no wait brings a rule group, only a new resource."""
    config = yamltext.parse(prom.config_yaml()) or {}
    if config.get("rule_files"):
        return None
    return (f"the configuration the {prom.name} loaded has no rule_files: its Prometheus resource has no ruleSelector, "
            "so it loads no PrometheusRule (kube-prometheus-stack sets one: prometheus.prometheusSpec.ruleSelector / "
            "ruleSelectorNilUsesHelmValues)")


def persistent_errors(seen: dict[str, float], groups: list[dict]) -> list[str]:
    """Rules that failed at two evaluations of their group in a row; seen keeps each failing rule's evaluation time.

    An evaluation error that repeats is the rule's own query against the data there is (a bad expression, a
    many-to-many match): the next evaluation runs the same query."""
    repeated = []
    for g in groups:
        evaluated = rfc3339_seconds(g.get("lastEvaluation", ""))
        for r in g.get("rules") or []:
            key = f"group {g.get('name')} (file {g.get('file')}): rule {r.get('name')}"
            if not r.get("lastError"):
                seen.pop(key, None)
                continue
            if key in seen and seen[key] != evaluated:
                repeated.append(f"{key}: health {r.get('health')}: {r['lastError']}")
            seen.setdefault(key, evaluated)
    return repeated


def watchdog_not_loaded(prom: PrometheusClient, since: float) -> str | None:
    """Why Watchdog cannot fire: every loaded group evaluated since `since` and none holds it; else None."""
    groups = prom.rule_groups()
    if not groups or any(rfc3339_seconds(g.get("lastEvaluation", "")) < since for g in groups):
        return None  # not one full round yet: a group may still be loading
    if any(r.get("name") == WATCHDOG and r.get("type") == "alerting" for g in groups for r in g.get("rules") or []):
        return None
    return (f"none of the {len(groups)} rule groups the {prom.name} evaluates holds an alerting rule {WATCHDOG} (the "
            "chart's general.rules: defaultRules.rules.general, defaultRules.disabled.Watchdog); only new rule files "
            "bring it")


def alerts_sent_nowhere(prom: PrometheusClient, setting: str) -> str | None:
    """Why no alert of this Prometheus reaches any Alertmanager, from the configuration it loaded; else None."""
    config = yamltext.parse(prom.config_yaml()) or {}
    if (config.get("alerting") or {}).get("alertmanagers"):
        return None
    return (f"the configuration the {prom.name} loaded has no alerting.alertmanagers: it sends its alerts nowhere; "
            f"set {setting}")


def watchdog_first_sent(prom: PrometheusClient) -> tuple[float, float] | None:
    """When Watchdog was first sent (the evaluation that fired it: its activeAt plus its `for`, in whole rounds of its
    group) and its group's evaluation interval; None when it is not firing."""
    active = [rfc3339_seconds(a.get("activeAt", "")) for a in prom.alerts()
              if a.get("labels", {}).get("alertname") == WATCHDOG and a.get("state") == "firing"]
    rules = [(float(g.get("interval") or 60), float(r.get("duration") or 0)) for g in prom.rule_groups()
             for r in g.get("rules") or [] if r.get("name") == WATCHDOG and r.get("type") == "alerting"]
    if not active or not rules:
        return None
    interval, hold = rules[0]
    return min(active) + math.ceil(hold / interval) * interval, interval


def delivery_hopeless(prom: PrometheusClient) -> str | None:
    """Why waiting will not bring its alerts: Watchdog sent in two rounds and every send to every Alertmanager failed.

    Prometheus v3.14.0 sends a firing alert at the evaluation that fires it, then at the first evaluation past the
    resend delay (--rules.alert.resend-delay; rules/alerting.go needsSending), and drops a batch whose send failed
    (notifier/sendloop.go: errors and dropped count it, sent only a success)."""
    samples = parse_samples(prom.http.request("GET", "/metrics").text)
    errors = sum_by(samples, "prometheus_notifications_errors_total", "alertmanager")
    sent = sum_by(samples, "prometheus_notifications_sent_total", "alertmanager")
    if not errors or any(sent.values()) or not all(n > 0 for n in errors.values()):
        return None
    if (first := watchdog_first_sent(prom)) is None:
        return None
    first_sent, interval = first
    resend = parse_duration(prom.flags().get("rules.alert.resend-delay", "1m"))
    firing = max(0.0, time.time() - first_sent)
    if firing < resend + interval:
        return None  # not two send rounds yet: the first send may have raced the Alertmanager's start
    return (f"every alert the {prom.name} sent failed ({'; '.join(f'{u}: {n:.0f} alerts' for u, n in errors.items())} "
            f"affected by errors, none sent in the {firing:.0f} s since {WATCHDOG} was first sent; "
            "prometheus_notifications_errors_total): it drops a failed batch and resends only every "
            f"{resend:g} s, so waiting will not help; its log names the error (\"Error sending alerts\")")


def watchdog_state(prom: PrometheusClient) -> str | None:
    """Watchdog's state in Prometheus' active alerts (firing, pending), or None when it is not active."""
    states = [a.get("state") for a in prom.alerts() if a.get("labels", {}).get("alertname") == WATCHDOG]
    return "firing" if "firing" in states else (states[0] if states else None)


def why_watchdog_is_not_firing(prom: PrometheusClient) -> str:
    """Whether a Watchdog rule is loaded at all, and what its evaluation says."""
    rules = [r for g in prom.rule_groups() for r in g.get("rules") or [] if r.get("name") == WATCHDOG and r.get("type") == "alerting"]
    if not rules:
        return (f"no alerting rule {WATCHDOG} is loaded in the {prom.name} (the chart's general.rules: "
                "defaultRules.rules.general, defaultRules.disabled.Watchdog)")
    r = rules[0]
    if r.get("lastError"):
        return f"rule {WATCHDOG} fails to evaluate: {r['lastError']}"
    return f"rule {WATCHDOG} is {r.get('state', 'inactive')} (expr {r.get('query')})"


def why_not_delivered(prom: PrometheusClient | None, cluster: str, setting: str, label: str = "cluster") -> str:
    """Why the cluster's Watchdog is not in the Alertmanager, from its Prometheus' side; empty when it cannot be asked."""
    if prom is None:
        return ""
    try:
        state = watchdog_state(prom)
        if state != "firing":
            return f"{WATCHDOG} is not firing in the {prom.name}: " + why_watchdog_is_not_firing(prom)
        discovery = prom.alertmanagers()
        active = [a.get("url", "") for a in discovery.get("activeAlertmanagers") or []]
        if not active:
            dropped = [a.get("url", "") for a in discovery.get("droppedAlertmanagers") or []]
            extra = f" ({len(dropped)} dropped by relabelling: {', '.join(dropped)})" if dropped else ""
            return f"the {prom.name} has no Alertmanager configured (/api/v1/alertmanagers lists none{extra}); set {setting}"
        samples = parse_samples(prom.http.request("GET", "/metrics").text)
        errors = sum_by(samples, "prometheus_notifications_errors_total", "alertmanager")
        sent = sum_by(samples, "prometheus_notifications_sent_total", "alertmanager")
        failing = [f"{url}: {n:.0f} alerts affected by errors of {sent.get(url, 0):.0f} sent" for url, n in errors.items() if n > 0]
        if failing:
            return (f"the {prom.name} fails to send to its Alertmanager ({'; '.join(failing)}; "
                    "prometheus_notifications_errors_total); its log names the error")
        return (f"the {prom.name} sends to {', '.join(active)} without errors "
                f"({', '.join(f'{u}: {n:.0f} sent' for u, n in sent.items()) or 'nothing sent yet'}), "
                f"but the Alertmanager checked has no Watchdog with {label}={cluster}: is it another Alertmanager?")
    except ServiceError as e:
        return f"(the {prom.name} could not be asked: {e.headline})"


def watchdog_clusters(am: AlertmanagerClient, label: str = "cluster") -> dict[str, str]:
    """The cluster label (each sender's external label) -> Alertmanager state of each Watchdog alert it holds."""
    out = {}
    for a in am.alerts(f'alertname="{WATCHDOG}"'):
        out[a.get("labels", {}).get(label, "")] = (a.get("status") or {}).get("state", "")
    return out


@dataclass(frozen=True)
class ConfigState:
    """Whether Alertmanager runs the configuration it was last given (config/coordinator.go's metrics)."""

    last_reload_ok: bool | None  # None when the metric is absent
    last_success: float  # epoch seconds of the last successful load
    config_hash: str


def config_state(am: AlertmanagerClient) -> ConfigState:
    samples = {s.name: s for s in am.metrics()}
    ok = samples.get("alertmanager_config_last_reload_successful")
    success = samples.get("alertmanager_config_last_reload_success_timestamp_seconds")
    digest = samples.get("alertmanager_config_hash")
    return ConfigState(None if ok is None else ok.value == 1.0, success.value if success else 0.0,
                       f"{digest.value:.0f}" if digest else "")
