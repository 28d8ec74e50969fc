"""A failing stack pod's own words: its container's previous (crashed) log tail, else its current one."""

from __future__ import annotations

from conformance.core.redact import redact

LOG_LINES = 20


def last_logs(kube, core, problem) -> str:
    """The container's previous (crashed) log tail, else its current one."""
    for previous in (True, False):
        try:
            text = core.read_namespaced_pod_log(problem.pod, problem.namespace, container=problem.container,
                                                previous=previous, tail_lines=LOG_LINES, _request_timeout=10)
        except Exception:
            continue
        label = "previous" if previous else "current"
        return f"last {LOG_LINES} lines ({label} container):\n" + redact(text or "(empty)")
    return "(no logs could be read)"
