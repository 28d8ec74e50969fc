"""Issue 17's newcomer scenario: a real Prometheus pair in endpoints mode, with no Envoy and no rules.

    python benchmarks/newcomer.py [--intervals stack|fast] [--show]

A user points the suite at the two Prometheus servers they have (the stack's pin, the remote writing to the primary,
each scraping only itself) and runs `-m "metrics or platform or mesh"`, then `--with alerting -m alerting`. Nothing
else answers: the mesh's and platform's pools are not configured and no rule file is loaded, so those checks fail or
are not observed; each should say why at the first look. Prints each run's time against the 90 s budget and the
headline of every check that did not pass. A benchmark: it never fails on a time.
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
from conformance.reports.model import load_run  # noqa: E402
from conformance.core.topology import load_topology  # noqa: E402
from tests.proving_ground import FAST, STACK_TIMING, PrometheusPair, start_prometheus  # noqa: E402
from tests.suite_runner import run_suites, write_topology  # noqa: E402

BUDGET = 90.0  # issue 17: a stack whose services answer but miss what the checks need
RUNS = [("metrics or platform or mesh", []), ("alerting", ["--with", "alerting"])]


def ground(folder: Path, stack: ExitStack, timing) -> Path:
    """The pair (receiver on the primary, the remote writing to it) and its endpoints topology."""
    primary = start_prometheus("primary", folder / "oke", cluster="oke", receiver=True, timing=timing)
    stack.callback(primary.stop)
    remote = start_prometheus("remote", folder / "workstation", cluster="workstation", timing=timing,
                              remote_write_url=f"{primary.url}/api/v1/write")
    stack.callback(remote.stop)
    PrometheusPair(primary, remote).wait_until_remote_arrives()  # a pair that has run a while, as users have
    return write_topology(folder, [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": {"prometheus": primary.url}},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": remote.url}},
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/newcomer.py")
    p.add_argument("--intervals", choices=("stack", "fast"), default="stack", help="the pair's scrape interval: 30 s or 1 s")
    p.add_argument("--show", action="store_true", help="print the end of each child run's output")
    args = p.parse_args(argv)
    timing = STACK_TIMING if args.intervals == "stack" else FAST
    with tempfile.TemporaryDirectory(prefix="newcomer-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        topology = ground(folder, stack, timing)
        for markers, extra in RUNS:
            side_by_side = workers(extra, load_topology(topology))
            run = run_suites(folder, "--topology", str(topology), "-m", markers, *side_by_side, *extra, timeout=900)
            seconds = run.suite_seconds
            verdict = "within" if seconds <= BUDGET else "OVER"
            print(f"-m {markers!r} {' '.join(extra)}: exit {run.code}, {seconds:.1f} s {verdict} {BUDGET:.0f} s "
                  f"(wall {run.seconds:.1f} s)", flush=True)
            for check in load_run(run.junit).checks:
                if check.outcome != "passed":
                    headline = check.message.splitlines()[0][:150] if check.message else ""
                    print(f"    {check.outcome:<14} {check.seconds:5.1f} s {check.key}: {headline}")
            if args.show:
                print(run.output[-5000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
