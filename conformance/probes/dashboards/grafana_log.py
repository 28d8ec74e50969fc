"""Reading Grafana's own log: provisioning passes, rejected dashboard files, duplicate uids, datasource errors.

Grafana logs logfmt (`logger=... level=error msg="..." file=...`) since 8, `lvl=eror` before, and JSON with
`[log] format = json`; the wording of its messages moves between versions (docs/real-stack.md says at which
version each was read), so every pattern here is loose, and a caller that finds nothing falls back to waiting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Provisioner.Provision logs a line when a pass starts and one when it ends (pkg/services/provisioning/dashboards/dashboard.go).
PASS_START = re.compile(r"start\w*\s+(to\s+)?provision\w*\s+dashboards", re.I)
PASS_END = re.compile(r"(finish|complet|done)\w*\s+(to\s+)?provision\w*\s+dashboards", re.I)
ERROR_LEVEL = re.compile(r'\b(level=error|lvl=eror|lvl=error)\b|"(level|lvl)":\s*"err', re.I)
PROVISIONING = re.compile(r'logger"?[=:]\s*"?provisioning', re.I)
# The duplicate-uid messages are warnings although the duplicate never loads (validator.go logWarnings; older:
# file_reader.go "the same 'uid' is used more than once"); a provider with duplicates then refuses every save.
DUPLICATE_UID = re.compile(r"same\W+uid\W+(is\s+used\s+more\s+than\s+once|already\s+exists)", re.I)
REFUSED_SAVE = re.compile(r"not\s+saving\s+new\s+dashboard", re.I)


def log_field(line: str, name: str) -> str | None:
    """One field of a logfmt or JSON log line ('file', 'error', ...), unquoted; None when absent."""
    quoted = re.search(rf'(?:^|[\s{{,])"?{name}"?[=:]\s*"((?:[^"\\]|\\.)*)"', line)
    if quoted:
        return quoted.group(1).replace('\\"', '"')
    bare = re.search(rf"(?:^|\s){name}=([^\s\"]+)", line)
    return bare.group(1) if bare else None


def is_provisioning_error(line: str) -> bool:
    """An error line of a provisioning logger, a duplicate-uid warning, or a save refused because of duplicates."""
    return bool(PROVISIONING.search(line) and (ERROR_LEVEL.search(line) or DUPLICATE_UID.search(line)
                                                 or REFUSED_SAVE.search(line)))


def line_cause(line: str) -> str:
    """What the line says went wrong: its error field, else its message, else the line."""
    return log_field(line, "error") or log_field(line, "err") or log_field(line, "msg") or line


@dataclass
class ProvisioningPass:
    """The last dashboard provisioning pass in Grafana's log: its lines and whether it logged its end."""

    lines: list[str] = field(default_factory=list)
    started: bool = False  # a pass line was found at all (else: lines is the whole log)
    completed: bool = False
    starts: int = 0  # pass starts in the whole log: a new pass since an earlier read changes it

    @property
    def rejected(self) -> dict[str, tuple[str, str]]:
        """Files this pass rejected, by base name: (the path Grafana logged, Grafana's error)."""
        found: dict[str, tuple[str, str]] = {}
        for line in self.lines:
            path = log_field(line, "file")
            if path and is_provisioning_error(line):
                found.setdefault(PurePosixPath(path).name, (path, line_cause(line)))
        return found

    @property
    def duplicate_uids(self) -> dict[str, str]:
        """Uids this pass found in more than one file, with the providers Grafana named."""
        found: dict[str, str] = {}
        for line in self.lines:
            uid = log_field(line, "uid")
            if uid and DUPLICATE_UID.search(line):
                found.setdefault(uid, (log_field(line, "providers") or log_field(line, "provider") or "").strip("[]"))
        return found

    @property
    def errors(self) -> list[str]:
        return [line for line in self.lines if is_provisioning_error(line)]


def last_pass(lines: list[str]) -> ProvisioningPass:
    """The lines from the last pass start on; the whole log, neither started nor completed, when no pass line is there."""
    starts = [i for i, line in enumerate(lines) if PASS_START.search(line)]
    if not starts:
        return ProvisioningPass(list(lines))
    current = lines[starts[-1]:]
    return ProvisioningPass(current, True, any(PASS_END.search(line) for line in current[1:]), len(starts))


def datasource_cause(lines: list[str], uid: str, name: str) -> str | None:
    """The last error or warning Grafana logged about one datasource (by dsUID, uid or dsName), its error field."""
    for line in reversed(lines):
        about = log_field(line, "dsUID") == uid or log_field(line, "datasourceUid") == uid \
            or log_field(line, "dsName") == name or log_field(line, "datasource") == name
        if about and re.search(r"level=(error|warn)|lvl=(eror|warn)|\"level\":\s*\"(error|warn)", line, re.I):
            cause = log_field(line, "error") or log_field(line, "err")
            if cause:
                return cause
    return None


# Health answers that name no cause: the plugin's boilerplate around an error it did not pass on, or Grafana's own
# answer when the plugin returned an error instead of a result (pkg/api/plugin_resource.go, pkg/tsdb/loki/healthcheck.go).
GENERIC_HEALTH = re.compile(
    r"plugin health check failed|please check the server logs( for more details)?|unable to connect with \w+"
    r"|there was an error returned querying the \w+ api|health check failed|internal server error"
    r"|an error occurred|unknown error", re.I)


def specific_part(message: str) -> str:
    """The health message less the generic phrases: '' when it names no cause."""
    rest = GENERIC_HEALTH.sub("", message or "")
    return rest if len(re.sub(r"[\W_]+", "", rest)) >= 3 else ""
