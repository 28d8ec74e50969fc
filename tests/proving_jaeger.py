"""A real Jaeger v2 on loopback (tests/real, the stack's pin, cmd/jaeger of module v1.76.0) for the tracing self-tests.

Its configuration is Istio 1.29.6 samples/addons/jaeger.yaml's config.yaml with three changes the ground needs:
every endpoint on a free loopback port (tests run side by side), the memory store of Jaeger's own all-in-one
default (cmd/jaeger/internal/all-in-one.yaml) instead of the addon's badger directories, and only the receivers
and extensions the checks touch (zipkin in; jaeger_query with base_path /jaeger out; healthcheckv2 for readiness).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.real.process import ServerProcess, http_ok
import tests.real as real
from tests.fakes.envoy import TracingSidecar
from tests.fakes.kiali import FakeKiali
from tests.proving_ground import free_port
from tests.proving_stack import kiali_spec

BASE_PATH = "/jaeger"  # the addon's jaeger_query.base_path


def config(zipkin: int, query_http: int, query_grpc: int, health: int, metrics: int) -> dict[str, Any]:
    """The addon's config.yaml, shaped as described in the module docstring."""
    at = lambda port: f"127.0.0.1:{port}"  # noqa: E731
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {"traces": {"receivers": ["zipkin"], "processors": ["batch"],
                                     "exporters": ["jaeger_storage_exporter"]}},
            "telemetry": {"resource": {"service.name": "jaeger"},
                          "metrics": {"level": "detailed", "readers": [
                              {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": metrics}}}}]},
                          "logs": {"level": "info"}},
        },
        "extensions": {
            "jaeger_query": {"base_path": BASE_PATH, "storage": {"traces": "memory_storage"},
                             "http": {"endpoint": at(query_http)}, "grpc": {"endpoint": at(query_grpc)}},
            "jaeger_storage": {"backends": {"memory_storage": {"memory": {"max_traces": 100000}}}},
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": at(health)}},
        },
        "receivers": {"zipkin": {"endpoint": at(zipkin)}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory_storage"}},
    }


@dataclass
class JaegerProcess(ServerProcess):
    """One running jaeger; stop() ends it."""

    LOG = "jaeger.log"
    folder: Path
    ports: dict[str, int]

    @property
    def query_url(self) -> str:
        """The query service at its base path, as the Service tracing:80 serves it."""
        return f"http://127.0.0.1:{self.ports['query_http']}{BASE_PATH}"

    @property
    def zipkin_url(self) -> str:
        """The collector the sidecars send to (Service zipkin:9411)."""
        return f"http://127.0.0.1:{self.ports['zipkin']}"

    def start(self, ready_timeout: float = 60.0) -> "JaegerProcess":
        path = self.folder / "config.yaml"
        path.write_text(yaml.safe_dump(config(**self.ports), sort_keys=False))
        # Jaeger traces itself to OTLP localhost:4317 by default: off, so no other test's port gets its spans.
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none"}
        # Ready when the health check and the query service both answer.
        ready = http_ok(f"http://127.0.0.1:{self.ports['health']}/status", f"{self.query_url}/api/services")
        return self.launch([str(real.require("jaeger")), "--config", str(path)], ready, name="jaeger",
                           timeout=ready_timeout, interval=0.2, cwd=self.folder, env=env)


def start_jaeger(folder: Path) -> JaegerProcess:
    folder.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("zipkin", "query_http", "query_grpc", "health", "metrics")}
    return JaegerProcess(folder, ports).start()


@dataclass
class TracingServers:
    """Jaeger, the primary's server sidecar, the remote's client sidecar (both sending spans to it), Kiali reading it."""

    jaeger: JaegerProcess
    server: TracingSidecar
    client: TracingSidecar
    kiali: FakeKiali

    def stop(self) -> None:
        for fake in (self.kiali, self.client, self.server):
            fake.stop()
        self.jaeger.stop()


def start_tracing_servers(folder: Path, primary: str = "oke", remote: str = "workstation") -> TracingServers:
    """The tracing part's servers, healthy: the sample server's sidecar on the primary, the sleep client's on the remote."""
    jaeger = start_jaeger(folder / "jaeger")
    server = TracingSidecar(primary, "helloworld", "sample", "helloworld", collector=jaeger.zipkin_url).start()
    client = TracingSidecar(remote, "sleep", "sample", "sleep", collector=jaeger.zipkin_url, upstream=server.url).start()
    kiali = FakeKiali(kiali_spec()).start()
    kiali.tracing_url = jaeger.query_url  # the CR's external_services.tracing.internal_url
    return TracingServers(jaeger, server, client, kiali)
