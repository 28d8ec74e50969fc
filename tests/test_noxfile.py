"""The nox sessions start fast: one shared environment, reinstalled only when pyproject.toml changes (issue 22)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaded():
    """noxfile.py imported once (nox registers its sessions at import)."""
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def noxfile(loaded, tmp_path, monkeypatch):
    """noxfile.py with its environment and pyproject.toml moved into tmp_path."""
    mod = loaded
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    env = tmp_path / ".nox" / "env"
    for name, value in {"ROOT": tmp_path, "REPORTS": tmp_path / "reports", "ENV": env, "BIN": env / "bin",
                        "STAMP": env / "installed-pyproject.sha256"}.items():
        monkeypatch.setattr(mod, name, value)
    return mod


class FakeSession:
    """Records what a session would run; `python -m venv` makes the interpreter file it checks for."""

    def __init__(self, bin_dir: Path):
        self.runs: list[tuple[str, ...]] = []
        self.bin = bin_dir

    def run(self, *args: str, **kwargs) -> None:
        self.runs.append(args)
        if args[1:3] == ("-m", "venv"):
            self.bin.mkdir(parents=True)
            (self.bin / "python").write_text("")


def pip_installs(session: FakeSession) -> int:
    return sum(1 for r in session.runs if "pip" in r)


def test_second_run_installs_nothing_until_pyproject_changes(noxfile):
    session = FakeSession(noxfile.BIN)
    noxfile.install(session)
    assert [r[1:3] for r in session.runs] == [("-m", "venv"), ("-m", "pip")]
    noxfile.install(session)
    assert pip_installs(session) == 1, "a second run must reuse the environment as it is"
    (noxfile.ROOT / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['y']\n")
    noxfile.install(session)
    assert pip_installs(session) == 2, "a changed pyproject.toml must reinstall"
    assert sum(1 for r in session.runs if "venv" in r) == 1, "the environment itself is created once"


def test_failed_install_is_retried(noxfile):
    session = FakeSession(noxfile.BIN)

    def failing(*args, **kwargs):
        FakeSession.run(session, *args, **kwargs)
        if "pip" in args:
            raise RuntimeError("pip failed")

    session.run = failing
    with pytest.raises(RuntimeError):
        noxfile.install(session)
    assert not noxfile.STAMP.exists()
    session.run = lambda *a, **k: FakeSession.run(session, *a, **k)
    noxfile.install(session)
    assert pip_installs(session) == 2


def test_bare_nox_lists_sessions_and_they_share_one_environment(noxfile):
    import nox.registry

    assert noxfile.nox.options.sessions == [], "a bare ./nox lists the sessions, it starts none"
    sessions = nox.registry.get()
    assert {"tests", "conformance", "up", "down", "upgrade", "bench", "report"} <= set(sessions)
    assert all(f.venv_backend == "none" for f in sessions.values()), "nox must build no per-session virtualenv"


def test_report_needs_only_the_standard_library(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps({"time": "2026-01-01T00:00:00+00:00", "verdict": "PASS"}) + "\n")
    # -S: no site-packages, so any import beyond the standard library fails the run.
    proc = subprocess.run([sys.executable, "-S", "-m", "conformance.reports", "history", "--history", str(history)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "PASS" in proc.stdout, proc.stderr


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    """`nox -s tests` runs --dist loadgroup: the tests of an xdist_group (one expensive ground) share one worker.
    pytest 9.2 broke that silently (pytest-dev/pytest-xdist#1386); pyproject.toml keeps pytest below it."""
    seen = tmp_path / "seen"
    seen.mkdir()
    (tmp_path / "test_group.py").write_text(
        "import os, pathlib, pytest\n"
        "pytestmark = pytest.mark.xdist_group('ground')\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_one(i):\n"
        "    (pathlib.Path(os.environ['SEEN']) / str(i)).write_text(os.environ['PYTEST_XDIST_WORKER'])\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "3", "--dist", "loadgroup", "-p", "no:cacheprovider",
                          "test_group.py"], cwd=tmp_path, env={**os.environ, "SEEN": str(seen)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    workers = [f.read_text() for f in seen.iterdir()]
    assert len(workers) == 6 and len(set(workers)) == 1, workers
