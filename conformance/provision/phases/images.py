"""Phase preload: the pinned images loaded from the local docker, and after the bring-up, proof the pods run no other."""

from __future__ import annotations

import yaml

from conformance.provision.commands import Kube, Options, StepError
from conformance.provision.steps import Step
from conformance.core.versions import Versions, normalize_image
from conformance.core.stack import SERVICES_FILE


def offline_node_image(steps: list[Step], image: str) -> list[Step]:
    """Offline, `kind create` must find the node image in the local docker (else it pulls it): check it first."""
    at = next((i for i, s in enumerate(steps) if s.title == "create kind cluster"), len(steps))
    check = Step("clusters", None, "node image in the local docker (offline: kind must not pull it)",
                 ("docker", "image", "inspect", "--format", "{{.Id}}", image), timeout=30)
    return [*steps[:at], check, *steps[at:]]


def preload_images(versions: Versions, profile: str = "promtail") -> list[str]:
    """The images --preload loads: the pinned ones (with the stack profile's) plus the suites' log canary image."""
    images = list(versions.images_for(profile))
    # The suites' log canary image, when stack/services.yaml names one.
    canary = (yaml.safe_load(SERVICES_FILE.read_text()).get("canary") or {}).get("image")
    if canary and canary not in images:
        images.append(canary)
    return images


def preload_phase(opts: Options) -> list[Step]:
    """Load the pinned images from the local docker into every node (rate limits, air-gapped runs)."""
    images = preload_images(opts.versions, opts.topology.profile)
    steps = [Step("preload", None, "images present in the local docker",
                  ("docker", "image", "inspect", "--format", "{{.Id}}", *images), timeout=60)]
    for c in opts.topology.clusters:
        steps.append(Step("preload", c.name, "load images into the nodes",
                          ("kind", "load", "docker-image", "--name", c.name, *images), timeout=900,
                          parallel="preload", waits_for=f"{len(images)} images loaded"))
    return steps


# Every container and init container of every pod, one image per line.
_POD_IMAGES = ('jsonpath={range .items[*]}{range .spec.initContainers[*]}{.image}{"\\n"}{end}'
               '{range .spec.containers[*]}{.image}{"\\n"}{end}{end}')


def preload_check_phase(opts: Options, kube: dict[str, Kube]) -> list[Step]:
    """After bring-up: the images the charts actually rendered are all in the preload list (no drift)."""
    images = preload_images(opts.versions, opts.topology.profile)
    return [Step("preload", c.name, "every image the pods run was preloaded",
                 kube[c.name].kubectl("get", "pods", "--all-namespaces", "--output", _POD_IMAGES), timeout=60,
                 parse=lambda out, f, n=c.name: check_preloaded(n, out.split(), images))
            for c in opts.topology.clusters]


def check_preloaded(cluster: str, running: list[str], preloaded: list[str]) -> None:
    """Refuse images the pods run that --preload did not load: on an air-gapped node they cannot start."""
    loaded = {normalize_image(i) for i in preloaded}
    missing = sorted({i for i in running if normalize_image(i) not in loaded})
    if missing:
        raise StepError(f"pods on {cluster} run images --preload did not load: {', '.join(missing)}; "
                        f"the charts render other images than {VERSIONS_NAME} lists; fix its images/apps")


VERSIONS_NAME = "stack/versions.yaml"
