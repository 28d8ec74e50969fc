"""A step of the bring-up as data, and the facts steps learn at run time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# Placeholders for values known only at run time, e.g. @{oke.control_plane_ip}.
# Not {..}: kubectl jsonpath and docker --format use braces themselves.
PLACEHOLDER = re.compile(r"@\{([A-Za-z0-9_.-]+)\}")


class Facts:
    """Values learned while running (addresses, existing clusters); secret ones are redacted everywhere."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.secrets: set[str] = set()

    def set(self, key: str, value: object, secret: bool = False) -> None:
        self.values[key] = value
        if secret and isinstance(value, str) and value:
            self.secrets.add(value)

    def add_secret(self, value: str) -> None:
        """Register a string that must never appear in output, traces or bundles."""
        if value:
            self.secrets.add(value)

    def add_secret_text(self, text: str) -> None:
        """Register every long token of a secret output (kubeconfig keys, tokens, certificates)."""
        for token in re.split(r"[\s\"',:]+", text):
            if len(token) >= 16:
                self.secrets.add(token)

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def fill(self, text: str) -> str:
        """Replace @{key} with its value; a missing fact is a bug in the plan's order."""
        return PLACEHOLDER.sub(lambda m: str(self.values[m.group(1)]), text)


def show(text: str) -> str:
    """How --dry-run prints an unresolved placeholder: <oke.control_plane_ip>."""
    return PLACEHOLDER.sub(lambda m: f"<{m.group(1)}>", text)


@dataclass(frozen=True)
class When:
    """A run-time condition; `text` is what --dry-run prints."""

    text: str
    test: Callable[[Facts], bool]


@dataclass(frozen=True)
class Step:
    """One command (or small Python action) of the plan, with its bounds."""

    phase: str
    cluster: str | None
    title: str
    # The command; argv[0] is a tool name (kind, kubectl, helm, istioctl, docker) resolved at run time.
    argv: tuple[str, ...] = ()
    # A Python action instead of a command (writes a file, checks a value).
    action: Callable[[Facts], None] | None = None
    # Seconds before the command is killed and the step fails.
    timeout: float = 120.0
    # What a readiness wait waits for; shown in progress lines.
    waits_for: str = ""
    # Re-run until it succeeds, for at most `timeout` seconds in all (a bounded wait).
    retry: bool = False
    # Seconds between attempts of a retried step.
    poll: float = 5.0
    # When set, the pause doubles after each attempt up to this many seconds (back off).
    max_poll: float | None = None
    # Store stripped stdout as this fact.
    capture: str | None = None
    # Parse stdout into facts.
    parse: Callable[[str, Facts], None] | None = None
    # A retried step succeeds only when this accepts its stdout (e.g. an address is assigned).
    ready: Callable[[str], bool] | None = None
    # The state a not-ready stdout shows, in a few words; the timeout's diagnosis ends with the last one.
    state: Callable[[str], str] | None = None
    # Stdout holds credentials: never printed, traced or bundled.
    secret: bool = False
    # Write stdout to this file (owner-only).
    stdout_to: Path | None = None
    # Stderr substrings that mean "already done" (exit status ignored).
    tolerate: tuple[str, ...] = ()
    # Run only when this holds.
    when: When | None = None
    # Consecutive steps with the same group run concurrently.
    parallel: str | None = None
    # Extra environment for the command.
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The command line as --dry-run prints it."""
        if self.action is not None:
            return f"(action) {self.title}"
        return " ".join(_quote(show(a)) for a in self.argv)


def _quote(arg: str) -> str:
    if arg and not re.search(r"[\s'\"$`\\|&;<>(){}*?\[\]]", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"
