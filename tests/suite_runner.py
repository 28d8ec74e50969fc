"""Run the conformance suites in a child pytest, as a user would, and read back the JUnit report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.reports.junit import legacy_key

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SuiteRun:
    """What a child run left: exit code, terminal output, JUnit cases, wall time."""

    code: int
    output: str
    junit: Path
    seconds: float

    def cases(self) -> dict[str, ET.Element]:
        """JUnit testcases by their report name ('logs::log canary reaches the primary loki[oke]')
        and, for tests written against pytest's own names, by 'suites.test_logs::test_log_canary_...[oke]'."""
        root = ET.parse(self.junit).getroot()
        found: dict[str, ET.Element] = {}
        for case in root.iter("testcase"):
            found[f"{case.get('classname')}::{case.get('name')}"] = case
            nodeid = next((p.get("value") for p in case.iter("property") if p.get("name") == "nodeid"), None)
            if nodeid:
                found.setdefault(legacy_key(nodeid), case)
        return found

    @property
    def suite_seconds(self) -> float:
        """The child session's own time (JUnit's testsuite time): the checks, without the interpreter's start-up,
        which on a loaded machine can take longer than the checks themselves."""
        root = ET.parse(self.junit).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        return float(suite.get("time"))

    def names(self) -> list[str]:
        """The report names of the testcases, in report order."""
        root = ET.parse(self.junit).getroot()
        return [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")]

    def properties(self, case: str) -> dict[str, str]:
        element = self.cases()[case]
        return {p.get("name"): p.get("value") for p in element.iter("property")}

    def run_properties(self) -> dict[str, str]:
        """The testsuite's properties: topology, selection, what each API server answered, pins."""
        root = ET.parse(self.junit).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        return {p.get("name"): p.get("value") for p in suite.find("properties")}

    def assert_no_traceback(self) -> None:
        """An environment problem or a bad input is a line of words: no Python traceback, no library frame."""
        assert "Traceback (most recent call last)" not in self.output, self.output[-3000:]
        frames = [line for line in self.output.splitlines()
                  if re.search(r'(File "[^"]*(site-packages|lib/python3)|/(site-packages|_pytest|urllib3|httpx|kubernetes)/)', line)]
        assert not frames, "\n".join(frames[:10])

    def skip_reason(self, case: str) -> str:
        """Why a check was not observed (its JUnit <skipped> message)."""
        node = self.cases()[case].find("skipped")
        return "" if node is None else node.get("message") or ""

    def failure(self, case: str) -> str:
        element = self.cases()[case]
        node = element.find("failure")
        if node is None:
            node = element.find("error")
        return "" if node is None else (node.get("message") or "") + "\n" + (node.text or "")

    def failure_steady(self, case: str, bound: int = 3) -> str:
        """failure(), its "after N s" read as the wait's bound (3 s at --timeout-scale 0.05): a loaded machine's last
        look may end a wait seconds later, and the text, not the machine's speed, is under test."""
        return re.sub(r"after \d+ s\b", f"after {bound} s", self.failure(case))


def write_topology(folder: Path, clusters: list[dict], name: str = "topology.yaml", profile: str | None = None) -> Path:
    """A topology file; `profile` adds the stack profile key (issue 12), absent: the default profile."""
    path = folder / name
    path.write_text(yaml.safe_dump({"clusters": clusters, **({"profile": profile} if profile else {})}, sort_keys=False))
    return path


# `nox -s bench -- --parts` sets this to a file: every child run then keeps the real timeouts (its --timeout-scale
# is dropped) and appends its time there, so the optional parts' failing paths are timed as a user would wait.
BENCH_RUNS_ENV = "CONFORMANCE_BENCH_RUNS"


def run_suites(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> SuiteRun:
    """pytest suites ARGS in a child process, JUnit into tmp_path."""
    junit = tmp_path / "junit.xml"
    bench = os.environ.get(BENCH_RUNS_ENV)
    if bench:
        args, timeout = at_real_timeouts(args), max(timeout, 900.0)
    command = [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    run = SuiteRun(result.returncode, result.stdout + result.stderr, junit, time.monotonic() - started)
    if bench:
        record_for_bench(Path(bench), run, args)
    return run


def at_real_timeouts(args: tuple[str, ...]) -> tuple[str, ...]:
    """args without any --timeout-scale (and its value)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--timeout-scale":
            skip = True
        elif not a.startswith("--timeout-scale="):
            out.append(a)
    return tuple(out)


def record_for_bench(path: Path, run: SuiteRun, args: tuple[str, ...]) -> None:
    """One line per child run: the self-test that made it, its selection, exit code and the child's own time."""
    try:
        seconds = run.suite_seconds
    except (OSError, ET.ParseError, TypeError):
        seconds = run.seconds
    line = {"test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0], "args": list(args),
            "code": run.code, "seconds": round(seconds, 1)}
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")


def settle(condition, what: str, timeout: float = 60.0) -> None:
    """Wait until the proving ground shows the state under test (a scrape, a remote-write send, a failed scrape), so the
    check's own short wait judges it; slower on a loaded machine, never part of what a test asserts."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"proving ground: {what} after {timeout:.0f} s")
        time.sleep(0.5)
