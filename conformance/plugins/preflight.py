"""The host check the suites make before kind clusters can mean anything (the bring-up makes the full set)."""

from __future__ import annotations

from conformance.provision.preflight import query_docker


def docker_engine_problem() -> str | None:
    """None when a Docker engine answers `docker info`; otherwise what is wrong, in one line."""
    return query_docker()[1]


def kind_preflight_message(topology_path: str, kind_clusters: list[str], problem: str) -> str:
    """What a user reads when kind clusters are asked for and Docker is not there."""
    return (
        f"preflight: topology {topology_path} has kind clusters ({', '.join(kind_clusters)}), but {problem}.\n"
        "Ways forward:\n"
        "  - start a Docker engine (kind runs its clusters as containers), then run `nox -s conformance` again;\n"
        "  - or check clusters you already have: pass `--topology FILE` whose clusters use provider: existing\n"
        "    (kubeconfig contexts) or provider: endpoints (service URLs); see the README."
    )
