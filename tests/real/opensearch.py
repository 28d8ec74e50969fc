"""One real OpenSearch node for the self-tests: built with Maven from tests/real/opensearch/, cached, run on loopback.

The node is the server jar org.opensearch:opensearch at stack/versions.yaml `apps.opensearch` (the opensearch chart's
appVersion) with the distribution's HTTP/transport module transport-netty4-client, started in one JVM by the
project's own launcher (Launcher.java): single-node discovery, no security plugin (the distribution's plugins are
not modules of the server), data under a temporary folder. The build goes into <cache>/real/opensearch-<version>/
like the Go-built servers (tests/real/build.py), once per machine; a Java of the line's minimum runs it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


from tests import web
from tests.real.build import BUILD_TIMEOUT, Progress, Unavailable, cache_root
from tests.real.process import LoopbackServer
from tests.real.registry import version_of

NAME = "opensearch"
SOURCE = Path(__file__).parent / "opensearch"  # pom.xml and the launcher's source
MAIN_CLASS = "conformance.opensearch.Launcher"
JAVA_FOLDERS = ("/usr/lib/jvm", "/Library/Java/JavaVirtualMachines")  # Debian/Ubuntu, macOS
# Heap of the test node: small, as its documents are few (the chart's default is -Xmx512M -Xms512M, values.yaml
# opensearchJavaOpts). The client JIT alone and the serial collector halve the CPU a start costs (3.3-3.7 s against
# 6.5-7.4 s measured on 2 shared cores); the node answers the same.
JAVA_OPTS = ("-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "--enable-native-access=ALL-UNNAMED")
START_TIMEOUT = 180.0  # a cold JVM on two busy cores: about 20 s measured; the bound is generous, not a budget


def version() -> str:
    """The OpenSearch release the stack pins (stack/versions.yaml apps.opensearch)."""
    return version_of(NAME)


def java_minimum(release: str) -> int:
    """The Java feature release the line's jars need: 3.x jars are class files of Java 21 (major 65); 2.x, 11."""
    major = int(release.removeprefix("v").split(".")[0])
    return 21 if major >= 3 else 11


def java_feature(home: Path) -> int | None:
    """The feature release of the JDK at home (its `release` file's JAVA_VERSION), None when it is no JDK."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', text, re.M)
    return int(m.group(1)) if m and (home / "bin" / "javac").is_file() else None


def find_jdk(minimum: int) -> Path | None:
    """JAVA_HOME when it is a JDK of at least `minimum`, else the newest such JDK in the usual folders."""
    if home := os.environ.get("JAVA_HOME"):
        if (java_feature(Path(home)) or 0) >= minimum:
            return Path(home)
    found = []
    for folder in JAVA_FOLDERS:
        for home in Path(folder).glob("*") if Path(folder).is_dir() else ():
            for candidate in (home, home / "Contents" / "Home"):
                if (feature := java_feature(candidate)) is not None and feature >= minimum:
                    found.append((feature, str(candidate)))
    return Path(max(found)[1]) if found else None


def cached_dir(release: str | None = None) -> Path:
    return cache_root() / f"{NAME}-{release or version()}"


def how_to_get(release: str) -> str:
    return (f"get it with `python -m tests.real build {NAME}` (a Maven build of tests/real/opensearch/ from Maven "
            f"Central, with a JDK {java_minimum(release)}+ found through JAVA_HOME or {JAVA_FOLDERS[0]})")


def ensure(progress: Progress = print) -> Path:
    """The built node's folder (classes/, lib/, classpath); built when missing, one build at a time across processes."""
    release = version()
    dest = cached_dir(release)
    if (dest / "classpath").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / "classpath").is_file():
            _build(release, dest, progress)
    return dest


def _build(release: str, dest: Path, progress: Progress) -> None:
    jdk, mvn = find_jdk(java_minimum(release)), shutil.which("mvn")
    if jdk is None:
        raise Unavailable(f"{NAME} {release} is not built and no JDK {java_minimum(release)}+ was found; "
                          f"{how_to_get(release)}")
    if mvn is None:
        raise Unavailable(f"{NAME} {release} is not built and `mvn` is not on PATH; {how_to_get(release)}")
    work = dest / ".src"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(dest / "lib", ignore_errors=True)
    shutil.copytree(SOURCE, work, ignore=shutil.ignore_patterns("target"))
    cmd = [mvn, "-B", "-q", f"-Dopensearch.version={release}", "compile", "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={dest / 'lib'}"]
    progress(f"building {NAME} {release} with Maven (org.opensearch:opensearch {release}, JDK {jdk}); once per machine")
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=work, env={**os.environ, "JAVA_HOME": str(jdk)}, capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT)
        if done.returncode != 0:
            tail = " | ".join(line.strip() for line in (done.stdout + done.stderr).splitlines()
                              if line.strip() and "WARNING" not in line)[-600:]
            raise Unavailable(f"{NAME} {release} could not be built (mvn exited {done.returncode}: {tail}); "
                              f"{how_to_get(release)}")
        shutil.rmtree(dest / "classes", ignore_errors=True)
        shutil.move(work / "target" / "classes", dest / "classes")
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{NAME} {release} could not be built (timed out after {BUILD_TIMEOUT:.0f} s); "
                          f"{how_to_get(release)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    classpath = os.pathsep.join([str(dest / "classes"), str(dest / "lib" / "*")])
    (dest / "java").write_text(str(jdk / "bin" / "java") + "\n")
    tmp = dest / ".classpath.partial"
    tmp.write_text(classpath + "\n")
    os.replace(tmp, dest / "classpath")  # last: its presence says the build is whole
    progress(f"built {NAME} {release} in {time.monotonic() - started:.0f} s: {dest}")


def java_of(built: Path) -> str:
    """The java the build used, if still there; else a JDK of the line's minimum found now."""
    recorded = Path((built / "java").read_text().strip()) if (built / "java").is_file() else None
    if recorded and recorded.is_file():
        return str(recorded)
    jdk = find_jdk(java_minimum(version()))
    if jdk is None:
        raise Unavailable(f"{NAME} {version()} is built but no JDK {java_minimum(version())}+ was found to run it")
    return str(jdk / "bin" / "java")


def node_settings(folder: Path, port: int, transport_port: int) -> dict[str, str]:
    """The node's settings: one node on loopback, single-node discovery (no bootstrap checks, no peers)."""
    return {
        "path.home": str(folder), "path.data": str(folder / "data"), "path.logs": str(folder / "logs"),
        "cluster.name": "conformance-selftest", "node.name": "node-1", "network.host": "127.0.0.1",
        "http.port": str(port), "transport.port": str(transport_port), "discovery.type": "single-node",
        "logger.level": "INFO",
    }


def health_ready(url: str) -> bool:
    """Ready: GET / answers and the cluster health is green or yellow (503 before a cluster manager is elected)."""
    if web.get(url + "/", timeout=2).status_code != 200:
        return False
    health = web.get(url + "/_cluster/health", timeout=2)
    return health.status_code == 200 and health.json().get("status") in ("green", "yellow")


@dataclass
class OpenSearchNode(LoopbackServer):
    """One running node (HTTP on 127.0.0.1:port); stop() ends it, its data stays in folder until the tmp is removed."""

    folder: Path
    port: int
    transport_port: int
    built: Path = field(default_factory=ensure)  # the folder ensure()/require() gave

    @property
    def log_path(self) -> Path:
        return self.folder / "node.log"

    def start(self, timeout: float = START_TIMEOUT) -> "OpenSearchNode":
        self.folder.mkdir(parents=True, exist_ok=True)
        classpath = (self.built / "classpath").read_text().strip()
        settings = node_settings(self.folder, self.port, self.transport_port)
        args = [java_of(self.built), *JAVA_OPTS, "-cp", classpath, MAIN_CLASS, *(f"{k}={v}" for k, v in settings.items())]
        return self.launch(args, lambda: health_ready(self.url), name=f"{NAME} {version()}", timeout=timeout,
                           interval=0.5)


def progress_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_unavailable: list[str] = []  # per process: a build that failed is not retried by every test


def require() -> Path:
    """For a self-test: the built node's folder; a skip saying how to get it when it cannot be had (a failure in CI)."""
    import pytest

    from tests.real import in_ci

    if not _unavailable:
        try:
            built = ensure(progress_to_stderr)
            java_of(built)  # a cache whose JDK is gone since: said here, not as the node's start traceback
            return built
        except Unavailable as e:
            _unavailable.append(str(e))
    if in_ci():
        pytest.fail(f"CI=true: {_unavailable[0]}", pytrace=False)
    pytest.skip(_unavailable[0])
