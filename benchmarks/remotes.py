"""A healthy run's time as remotes are added: 1 primary and N remotes, `-m "logs or metrics"`, on loopback.

    python benchmarks/remotes.py [--remotes 1,4,8] [-- PYTEST ARGS]

Per remote: a real Prometheus (the stack's pin) remote-writing to the real primary, and a log agent (the proving
ground's Promtail) shipping to the Loki fake; the topology is an endpoints one, run side by side as `nox -s conformance`
runs it (conformance.cli.workers: one xdist worker per cluster and one more, at most 8; `-- -n 0` for one after another). Prints the child session's own time
(JUnit's) and the wall time per N, and the ratio of the largest N to the smallest. A benchmark: it never fails on a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.cli import workers  # noqa: E402
from conformance.core.topology import load_topology  # noqa: E402
from tests.fakes.loki import FakeLoki  # noqa: E402
from tests.fakes.promtail import FakePromtail  # noqa: E402
from tests.proving_ground import PrometheusPair, start_prometheus  # noqa: E402
from tests.suite_runner import SuiteRun, run_suites, write_topology  # noqa: E402

MARKERS = "logs or metrics"


def ground(folder: Path, remotes: int, stack: ExitStack) -> Path:
    """Start the processes for 1 primary and `remotes` remotes; the endpoints topology that reaches them."""
    names = ["oke", *(f"remote-{i}" for i in range(1, remotes + 1))]
    primary = start_prometheus("primary", folder / "oke", cluster="oke", receiver=True)
    stack.callback(primary.stop)
    loki = stack.enter_context(FakeLoki())
    clusters, remote_processes = [], {}
    for name in names:
        prometheus = primary if name == "oke" else start_prometheus(
            name, folder / name, cluster=name, remote_write_url=f"{primary.url}/api/v1/write")
        if prometheus is not primary:
            stack.callback(prometheus.stop)
            remote_processes[name] = prometheus
        log = folder / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f'level=info msg="{name} log agent started"\n')
        agent = FakePromtail(f"{loki.url}/loki/api/v1/push", log, external_labels={"cluster": name}).start()
        stack.callback(agent.stop)
        services = {"prometheus": prometheus.url, "promtail": agent.metrics_url.removesuffix("/metrics")}
        if name == "oke":
            services["loki"] = loki.url
        clusters.append({"name": name, "role": "primary" if name == "oke" else "remote", "provider": "endpoints",
                         "services": services, "log_canary": {"file": str(log)}})
    for name, prometheus in remote_processes.items():  # healthy means the remotes' series are there already
        PrometheusPair(primary, prometheus).wait_until_remote_arrives(cluster=name)
    return write_topology(folder, clusters)


def measure(remotes: int, pytest_args: list[str]) -> tuple[SuiteRun, float]:
    """The run, and its child session's own time (read while its folder is there)."""
    with tempfile.TemporaryDirectory(prefix=f"remotes-{remotes}-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        topology = ground(folder, remotes, stack)
        side_by_side = workers(pytest_args, load_topology(topology))  # as `nox -s conformance` runs it
        run = run_suites(folder, "--topology", str(topology), "-m", MARKERS, *side_by_side, *pytest_args, timeout=900)
        return run, run.suite_seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/remotes.py")
    p.add_argument("--remotes", default="1,4,8", help="comma-separated remote counts (default 1,4,8)")
    p.add_argument("--show", action="store_true", help="print the end of each child run's output")
    p.add_argument("pytest", nargs=argparse.REMAINDER, help="after --: arguments for the suites")
    args = p.parse_args(argv)
    extra = [a for a in args.pytest if a != "--"]
    seconds: dict[int, float] = {}
    for n in [int(x) for x in args.remotes.split(",")]:
        run, seconds[n] = measure(n, extra)
        print(f"{n} remote(s): exit {run.code}, suite {seconds[n]:.1f} s, wall {run.seconds:.1f} s", flush=True)
        if run.code != 0 or args.show:
            print(run.output[-5000:])
    low, high = min(seconds), max(seconds)
    if high != low:
        print(f"{high} remotes take {seconds[high] / seconds[low]:.2f}x the time of {low}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
