"""Whose stack a cluster runs: this project's bring-up's (its values are the expectation) or a user's own (the stack's
own configuration is). The topology's `stack:` key decides; without it, how the service was found."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.access import service_title
from conformance.core.outcomes import Unobservable


@dataclass(frozen=True)
class Owner:
    """True when the project's bring-up installed the stack, and why the suite takes it so (for the report)."""

    bring_up: bool
    why: str


def stack_owner(access, cluster, service: str) -> Owner:
    """`stack: bring-up|own` in the topology; else the bring-up's when the service is under the bring-up's Service name
    (or cannot be found: its check says so), a user's own when found elsewhere or given only by URL."""
    title = service_title(cluster, service)
    if cluster.stack is not None:
        return Owner(cluster.stack == "bring-up", f"the topology says stack: {cluster.stack} for {cluster.name} "
                                                  f"({access.topology.path})")
    if service in cluster.services:
        return Owner(False, f"the topology gives {title}'s URL and no stack: key (stack: bring-up expects this "
                            "project's own)")
    try:
        found = access.located(cluster, service)
    except Unobservable as e:
        return Owner(True, f"{title} not found ({e.reason})")
    if found.how == "bring-up name":
        return Owner(True, f"{title} is the bring-up's Service {found.where}")
    return Owner(False, f"{title} found at {found.where} ({found.how}), not under the bring-up's name")
