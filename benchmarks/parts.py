"""The optional parts' failing paths at the real timeouts: each part's self-tests rerun, every child run timed.

    python benchmarks/parts.py [-k SUBSTRING] [-n WORKERS] [--runs reports/bench-parts.json]

Each part's failing paths already have self-tests that break a hop and run the suites in a child pytest
(tests/test_suite_<part>.py). With CONFORMANCE_BENCH_RUNS set, tests/suite_runner.py drops their
--timeout-scale (so the checks wait as long as a user's would) and records each child run's own time; a run
with a failed check is a failing path, held to the one-hop budget (60 s). The parts' grounds scrape every
1 s, not the stack's 30 s. A benchmark, not a test: a self-test failing here (one that asserts a scaled wait)
says nothing; the times do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.core.topology import PARTS  # noqa: E402
from tests.suite_runner import BENCH_RUNS_ENV  # noqa: E402

BUDGET = 60.0  # issue 17: one hop broken, the whole run


def self_tests() -> list[Path]:
    """tests/test_suite_<part>.py for every part that has one."""
    files = [ROOT / "tests" / f"test_suite_{name.replace('-', '_')}.py" for name in PARTS]
    return [f for f in files if f.is_file()]


def time_child_runs(files: list[Path], only: str, workers: int) -> list[dict]:
    """Run the self-tests with the bench switch on; the child runs they made, as recorded."""
    with tempfile.TemporaryDirectory(prefix="conformance-parts-") as tmp:
        record = Path(tmp) / "runs.jsonl"
        record.touch()
        command = [sys.executable, "-m", "pytest", *map(str, files), "-p", "no:cacheprovider", "-q", "-m", "not slow",
                   "-n", str(workers), *(["-k", only] if only else [])]
        subprocess.run(command, cwd=ROOT, env={**os.environ, BENCH_RUNS_ENV: str(record)}, timeout=3600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="only", default="", help="only the self-tests pytest -k selects")
    parser.add_argument("-n", dest="workers", type=int, default=3, help="self-tests side by side (pytest-xdist)")
    parser.add_argument("--runs", type=Path, default=ROOT / "reports" / "bench-parts.json", help="where the numbers go")
    args = parser.parse_args(argv)
    runs = time_child_runs(self_tests(), args.only, args.workers)
    failing = sorted((r for r in runs if r["code"] == 1), key=lambda r: -r["seconds"])
    print(f"the optional parts' failing paths at the real timeouts: {len(failing)} child runs with a failed check "
          f"(of {len(runs)}), budget {BUDGET:.0f} s each")
    for r in failing:
        verdict = "within" if r["seconds"] <= BUDGET else "OVER"
        selection = " ".join(a for a in r["args"] if not a.startswith("--topology") and not a.endswith(".yaml"))
        print(f"  {r['seconds']:6.1f} s {verdict:<6} {r['test'].removeprefix('tests/')}  [{selection}]")
    args.runs.parent.mkdir(parents=True, exist_ok=True)
    args.runs.write_text(json.dumps({"budget": BUDGET, "runs": runs}, indent=2) + "\n")
    print(f"numbers kept in {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
