"""Host checks that must pass before checks against kind clusters can mean anything."""

from __future__ import annotations

import shutil
import subprocess

DOCKER_INFO_TIMEOUT = 15  # seconds; `docker info` answers in well under a second when the engine is up


def docker_engine_problem(timeout: float = DOCKER_INFO_TIMEOUT) -> str | None:
    """None when a Docker engine answers `docker info`; otherwise what is wrong, in one line."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker CLI is not on PATH"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {timeout:.0f} s"
    if result.returncode != 0 or not result.stdout.strip():
        reason = (result.stderr.strip().splitlines() or ["no server version reported"])[-1]
        return f"no Docker engine is reachable (`docker info`: {reason})"
    return None


def kind_preflight_message(topology_path: str, kind_clusters: list[str], problem: str) -> str:
    """What a user reads when kind clusters are asked for and Docker is not there."""
    return (
        f"preflight: topology {topology_path} has kind clusters ({', '.join(kind_clusters)}), but {problem}.\n"
        "Ways forward:\n"
        "  - start a Docker engine (kind runs its clusters as containers), then run `nox -s conformance` again;\n"
        "  - or check clusters you already have: pass `--topology FILE` whose clusters use provider: existing\n"
        "    (kubeconfig contexts) or provider: endpoints (service URLs); see the README."
    )
