"""Grafana's own log as the dashboards checks read it: wherever the primary's provider has it, its last provisioning
pass, the declared dashboard an error line is about, and the cause of a datasource's generic health answer."""

from __future__ import annotations

from pathlib import PurePosixPath

from conformance.core.http import ServiceError
from conformance.core.outcomes import CheckFailure, Unobservable
from conformance.core.providers import LogUnavailable, provider_of
from conformance.probes.dashboards.declared import Dashboard
from conformance.probes.dashboards.grafana_log import ProvisioningPass, datasource_cause, last_pass, log_field, specific_part


def read_pass(access, primary) -> ProvisioningPass | None:
    """The last provisioning pass of Grafana's log; None when there is no log source or it cannot be read."""
    try:
        return last_pass(grafana_log(access, primary).splitlines())
    except (CheckFailure, ServiceError, Unobservable, OSError):
        return None


def grafana_log(access, primary) -> str:
    """Grafana's own log, wherever the primary's provider has it (its pods, or the topology's grafana_log file)."""
    if "grafana" in primary.absent:
        access.endpoint(primary, "grafana")  # not applicable: the topology declares the stack without Grafana
    return provider_of(access, primary).service_log("grafana")


def whose(line: str, expected: list[Dashboard]) -> str:
    """The declared dashboard and file a provisioning error line is about, as ' (dashboard ..., file ...)', or ''."""
    path, uid = log_field(line, "file"), log_field(line, "uid")
    d = next((d for d in expected if (path and PurePosixPath(path).name == d.file) or (uid and uid == d.uid)), None)
    if d is not None:
        return f" (dashboard {d.key}, file {path or d.path}" + (f", uid {uid})" if uid else ")")
    return f" (file {path})" if path else (f" (uid {uid}, no declared dashboard has it)" if uid else "")


def health_cause(health: dict, source: dict, access, primary) -> str:
    """The health answer's message when it names a cause; when it is generic, the error Grafana logged for the source."""
    message = str(health.get("message") or "")
    if specific_part(message):
        return message
    try:
        cause = datasource_cause(grafana_log(access, primary).splitlines(), source["uid"], source["name"])
    except LogUnavailable:
        return f"{message} (generic; no Grafana log source to find the cause in)"
    except (CheckFailure, ServiceError, Unobservable, OSError) as e:
        return f"{message} (generic; Grafana's log could not be read: {e})"
    return f"{cause} (from Grafana's log; the health answer says only: {message})" if cause else \
        f"{message} (generic; Grafana's log names no error for {source['name']})"
