"""Execute plan steps: bounded, with progress on the terminal and phase durations in reports/trace.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

from conformance.provision.clusters import write_private
from conformance.provision.redact import Redactor
from conformance.provision.commands import StepError
from conformance.provision.steps import Facts, Step

# Seconds between progress lines of a step that is still running.
PROGRESS_EVERY = 15.0
# Characters of stderr kept for the one-line diagnosis.
STDERR_TAIL = 300
# A look cut off before it answered says nothing of the state: the first one of a retried step gets this long at least,
# whatever its bound (every step of the plan is bounded at 30 s or more; a loaded machine may start a CLI slowly).
FIRST_LOOK_FLOOR = 30.0
TIMED_OUT = "timed out after"


class StepFailed(Exception):
    """A step failed; `diagnosis` is one line a user can act on."""

    def __init__(self, step: Step, diagnosis: str):
        super().__init__(diagnosis)
        self.step = step
        self.diagnosis = diagnosis

    @property
    def where(self) -> str:
        cluster = f" {self.step.cluster}" if self.step.cluster else ""
        return f"{self.step.phase}{cluster}: {self.step.title}"


@dataclass
class Record:
    """One executed (or skipped) step as trace.json stores it."""

    phase: str
    cluster: str | None
    title: str
    command: str
    status: str = "pending"
    seconds: float = 0.0
    attempts: int = 0
    started: float = field(default=0.0, repr=False)


class Runner:
    """Runs steps in order; consecutive steps of one `parallel` group run together."""

    def __init__(self, tools: dict[str, Path], trace_path: Path, out: TextIO = sys.stderr,
                 facts: Facts | None = None, progress_every: float = PROGRESS_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        self.tools = tools
        self.trace_path = trace_path
        self.out = out
        self.facts = facts or Facts()
        self.redact = Redactor(self.facts)
        self.progress_every = progress_every
        self.clock = clock
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.started = datetime.now(timezone.utc)

    # -- public -------------------------------------------------------------------------------

    def run(self, steps: list[Step]) -> None:
        """Run every step; the first failure stops the run and raises StepFailed after writing the trace."""
        try:
            for group in _groups(steps):
                if len(group) == 1:
                    self._one(group[0])
                else:
                    with ThreadPoolExecutor(max_workers=len(group)) as pool:
                        futures = [pool.submit(self._one, s) for s in group]
                    errors = [f.exception() for f in futures if f.exception() is not None]
                    if errors:
                        raise errors[0]
        except StepFailed as e:
            self.write_trace("failed", e.where, e.diagnosis)
            raise
        self.write_trace("ok")

    def write_trace(self, result: str, where: str | None = None, diagnosis: str | None = None) -> None:
        """reports/trace.json: per-step and per-phase durations (no secrets)."""
        phases: dict[str, float] = {}
        for r in self.records:
            key = f"{r.phase}/{r.cluster}" if r.cluster else r.phase
            phases[key] = round(phases.get(key, 0.0) + r.seconds, 3)
        doc = {
            "started": self.started.isoformat(timespec="seconds"),
            "result": result,
            "failed_step": where,
            "diagnosis": self.redact(diagnosis) if diagnosis else None,
            "phases": phases,
            "steps": [{"phase": r.phase, "cluster": r.cluster, "title": r.title, "command": self.redact(r.command),
                       "status": r.status, "seconds": round(r.seconds, 3), "attempts": r.attempts}
                      for r in self.records],
        }
        self.trace_path.parent.mkdir(parents=True, exist_ok=True)
        self.trace_path.write_text(json.dumps(doc, indent=2) + "\n")

    # -- one step -------------------------------------------------------------------------------

    def _one(self, step: Step) -> None:
        record = Record(step.phase, step.cluster, step.title, step.describe())
        with self.lock:
            self.records.append(record)
        label = f"[{step.phase}]" + (f" {step.cluster}:" if step.cluster else "")
        if step.when is not None and not step.when.test(self.facts):
            record.status = "skipped"
            self._say(f"  {label} {step.title}: skipped (runs only if {step.when.text})")
            return
        self._say(f"▶ {label} {step.title}" + (f" — waiting for {step.waits_for}" if step.waits_for else ""))
        record.started = self.clock()
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(step, label, record, stop), daemon=True)
        ticker.start()
        try:
            if step.action is not None:
                record.attempts = 1
                self._action(step)
            else:
                self._command(step, record)
        except StepFailed:
            record.status = "failed"
            raise
        finally:
            stop.set()
            ticker.join()
            record.seconds = self.clock() - record.started
        record.status = "ok"
        self._say(f"✓ {label} {step.title} ({record.seconds:.1f}s)")

    def _action(self, step: Step) -> None:
        try:
            step.action(self.facts)
        except StepError as e:
            raise StepFailed(step, str(e)) from None

    def _command(self, step: Step, record: Record) -> None:
        deadline = record.started + step.timeout
        argv = [self.facts.fill(a) for a in step.argv]
        argv[0] = str(self.tools.get(argv[0], argv[0]))
        env = {**os.environ, **step.env} if step.env else None
        poll, answered = step.poll, ""
        while True:
            record.attempts += 1
            floor = FIRST_LOOK_FLOOR if step.retry and record.attempts == 1 else 1.0
            ok, out, why = self._attempt(step, argv, env, max(deadline - self.clock(), floor))
            if ok:
                self._learn(step, out)
                return
            cut_off = why.startswith(TIMED_OUT)
            if not cut_off:
                answered = why
            if not step.retry or self.clock() + poll >= deadline:
                if step.retry:
                    last = f"{answered}; the next look was {why}" if cut_off and answered else why
                    why = f"not ready after {step.timeout:.0f}s ({record.attempts} attempts; last: {last})"
                raise StepFailed(step, self.redact(why))
            time.sleep(poll)
            poll = min(poll * 2, step.max_poll) if step.max_poll else poll

    def _attempt(self, step: Step, argv: list[str], env: dict | None, timeout: float) -> tuple[bool, str, str]:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return False, "", f"{TIMED_OUT} {timeout:.0f}s"
        except OSError as e:
            return False, "", f"cannot run {argv[0]}: {e.strerror}"
        if step.secret:
            self.facts.add_secret_text(proc.stdout)
        if proc.returncode != 0:
            if any(t in proc.stderr for t in step.tolerate):
                return True, proc.stdout, ""
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-STDERR_TAIL:]
            return False, "", f"exit {proc.returncode}: {tail or '(no stderr)'}"
        if step.ready is not None and not step.ready(proc.stdout):
            if step.state is not None:
                return False, "", step.state(proc.stdout)
            return False, "", "not ready yet" if step.retry else f"unexpected output: {proc.stdout.strip()[:100]!r}"
        return True, proc.stdout, ""

    def _learn(self, step: Step, out: str) -> None:
        if step.capture:
            self.facts.set(step.capture, out.strip(), secret=step.secret)
        if step.stdout_to is not None:
            write_private(step.stdout_to, out)
        if step.parse is not None:
            try:
                step.parse(out, self.facts)
            except StepError as e:
                raise StepFailed(step, str(e)) from None
            except (ValueError, KeyError) as e:
                raise StepFailed(step, f"cannot read the output: {e}") from None

    def _tick(self, step: Step, label: str, record: Record, stop: threading.Event) -> None:
        while not stop.wait(self.progress_every):
            elapsed = self.clock() - record.started
            what = step.waits_for or step.title
            self._say(f"  … {label} {what}: {elapsed:.0f}s of at most {step.timeout:.0f}s")

    def _say(self, line: str) -> None:
        with self.lock:
            print(self.redact(line), file=self.out, flush=True)


def _groups(steps: list[Step]) -> list[list[Step]]:
    groups: list[list[Step]] = []
    for s in steps:
        if groups and s.parallel and groups[-1][0].parallel == s.parallel:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def print_plan(steps: list[Step], out: TextIO, headers: bool = False) -> None:
    """The --dry-run output: every step in order, with its bounds and conditions (`headers`: a line per phase)."""
    for i, s in enumerate(steps, 1):
        if headers and (i == 1 or steps[i - 2].phase != s.phase):
            print(f"-- phase {s.phase}", file=out)
        where = f"[{s.phase}]" + (f" {s.cluster}" if s.cluster else "")
        notes = []
        if s.parallel:
            notes.append(f"parallel: {s.parallel}")
        if s.action is None:
            backoff = f", every {s.poll:.0f}s backing off to {s.max_poll:.0f}s" if s.retry and s.max_poll else ""
            notes.append(f"timeout {s.timeout:.0f}s" + (f" (retried{backoff})" if s.retry else ""))
        if s.waits_for:
            notes.append(f"waits for {s.waits_for}")
        if s.when:
            notes.append(f"only if {s.when.text}")
        if s.secret:
            notes.append("output is secret")
        print(f"{i:3d}. {where} {s.title}", file=out)
        print(f"       {s.describe()}", file=out)
        if notes:
            print(f"       ({'; '.join(notes)})", file=out)
