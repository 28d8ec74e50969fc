"""The tracing part in the bring-up: Istio's Jaeger addon at the pinned image, the zipkin provider for the primary's
istiod (which configures every cluster's sidecars), the mesh-wide Telemetry, Kiali's external_services.tracing."""

from __future__ import annotations

import pytest
import yaml

from conformance.provision.commands import lb_address_step
from conformance.provision.phases.images import preload_images
from conformance.provision.phases.stack import _render_kiali
from conformance.core.versions import load_versions
from conformance.core.stack import STACK_DIR, stack_services
from tests.provision.test_parts_plan import topology_with

MANIFESTS = STACK_DIR / "manifests"
OVERLAY = MANIFESTS / "istio-tracing.yaml"
TELEMETRY = MANIFESTS / "telemetry-tracing.yaml"


def istioctl_installs(out: str) -> dict[str, str]:
    return {line.split("--context kind-")[1].split()[0]: line for line in out.splitlines()
            if line.strip().startswith("istioctl install") and "istio-eastwest" not in line}


def test_the_dry_run_shows_the_tracing_steps(provision):
    code, out = provision("up", "--dry-run", "--with", "tracing")
    assert code == 0, out
    assert "optional parts: tracing" in out
    installs = istioctl_installs(out)
    assert f"--filename {OVERLAY}" in installs["oke"]
    assert str(OVERLAY) not in installs["workstation"]  # the remote has no istiod: the primary's serves its sidecars
    assert "apply --filename https://raw.githubusercontent.com/istio/istio/1.29.6/samples/addons/jaeger.yaml" in out
    assert "set image deployment/jaeger jaeger=docker.io/jaegertracing/jaeger:2.13.0 --namespace istio-system" in out
    assert "rollout status deployment/jaeger --namespace istio-system" in out
    assert f"apply --filename {TELEMETRY}" in out
    assert "[stack] oke render Kiali CR with external_services.tracing" in out


def test_without_the_part_nothing_of_it_is_planned(provision):
    code, out = provision("up", "--dry-run")
    assert code == 0, out
    assert "jaeger" not in out.lower() and str(OVERLAY) not in out and str(TELEMETRY) not in out
    assert "render Kiali CR\n" in out


def test_the_steps_run_in_order_against_the_fakes(provision, fakebin, tmp_path):
    code, out = provision("up", topology=topology_with(tmp_path, ["tracing"]))
    assert code == 0, out
    commands = fakebin.commands()
    index = lambda needle: next(i for i, c in enumerate(commands) if needle in c)  # noqa: E731
    assert index(f"--filename {OVERLAY}") < index("samples/addons/jaeger.yaml") < index("set image deployment/jaeger") \
        < index("rollout status deployment/jaeger") < index(str(TELEMETRY))
    cr = yaml.safe_load((provision.cache / "clusters" / "oke" / "kiali.yaml").read_text())
    tracing = cr["spec"]["external_services"]["tracing"]
    assert tracing == {"enabled": True, "provider": "jaeger", "use_grpc": False, "external_url": "",
                       "internal_url": "http://tracing.istio-system:80/jaeger"}
    assert cr["spec"]["external_services"]["prometheus"]["url"]  # the part adds to the CR, it replaces nothing


def test_kialis_internal_url_is_the_query_service_the_suite_reads():
    jaeger = stack_services()["jaeger"]
    # Istio 1.29.6 samples/addons/jaeger.yaml: Service tracing, port http-query 80, jaeger_query.base_path /jaeger.
    assert (jaeger.namespace, jaeger.service, jaeger.port, jaeger.web_root) == ("istio-system", "tracing", 80, "/jaeger")
    assert jaeger.proxy_path() == "/api/v1/namespaces/istio-system/services/http:tracing:80/proxy/jaeger"


def test_the_telemetry_names_the_mesh_configs_provider_at_the_addons_zipkin_service():
    overlay = yaml.safe_load(OVERLAY.read_text())["spec"]["meshConfig"]
    telemetry = yaml.safe_load(TELEMETRY.read_text())
    (provider,) = overlay["extensionProviders"]
    # The addon's Service zipkin in istio-system, port 9411 (Jaeger's zipkin receiver).
    assert provider["zipkin"] == {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411}
    assert overlay["enableTracing"] is True and overlay["defaultConfig"]["tracing"] == {}
    assert telemetry["metadata"] == {"name": "mesh-default", "namespace": "istio-system"}  # the root namespace
    assert [p["name"] for p in telemetry["spec"]["tracing"][0]["providers"]] == [provider["name"]]


def test_the_pinned_jaeger_image_is_preloaded():
    assert "docker.io/jaegertracing/jaeger:2.13.0" in preload_images(load_versions())


def test_the_kiali_cr_with_the_part_is_valid_for_kiali_2_29(tmp_path):
    from conformance.provision.parts import Context, plan_parts
    from conformance.core.topology import load_topology
    from tests.provision.conftest import TOPOLOGY
    from tests.provision.test_schemas import documents, validate

    class Argv:  # the part's steps are only built here, never run
        def kubectl(self, *args: str) -> tuple[str, ...]:
            return ("kubectl", *args)

    topo = load_topology(str(TOPOLOGY)).with_parts(["tracing"])
    extra = plan_parts(Context(topo, load_versions(), lambda name: Argv(), lb_address_step)).kiali
    _render_kiali(tmp_path / "kiali.yaml", "oke", extra)
    validate(documents(tmp_path / "kiali.yaml")[0])
    extra["external_services"]["tracing"]["in_cluster_urll"] = "http://x"  # a typo is refused
    _render_kiali(tmp_path / "typo.yaml", "oke", extra)
    with pytest.raises(Exception, match="in_cluster_urll"):
        validate(documents(tmp_path / "typo.yaml")[0])
