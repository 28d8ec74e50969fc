"""docs/troubleshooting.md: every section the code and docs link to exists, and nothing outside docs/ still
cites the reference notes that live outside the repository. Pure file reading: no server, no network."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "troubleshooting.md"
DOCS = {"docs/troubleshooting.md": GUIDE, "docs/real-stack.md": REPO / "docs" / "real-stack.md"}
# Where links to the guide may appear (the messages users see, comments, docs).
CITING = ("conformance/", "suites/", "fixtures/", "stack/", "tests/", "docs/", "README.md")
CITATION = re.compile(r"(docs/(?:troubleshooting|real-stack)\.md)#([\w-]+)")
# The external notes these links replaced; spelled in two parts so this file does not cite them itself.
STALE = ("failure" + "-modes", "../shared/" + "reference")
# Never tracked (.gitignore); pruned when git cannot list the tracked files.
UNTRACKED_DIRS = {".git", ".nox", ".nox-bootstrap", ".venv", ".pytest_cache", ".pytest-kind", "__pycache__",
                  "build", "reports"}
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped (hyphens and spaces kept), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[str]:
    """The Markdown headings of a document, outside fenced code blocks (whose `# comments` are not headings)."""
    found, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            found.append(m.group(2))
    return found


def anchors(text: str) -> set[str]:
    """Every anchor GitHub gives the document's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(text):
        base = github_anchor(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def tracked_files() -> list[str]:
    """Repository-relative paths of the tracked files (git ls-files); without git, the files under the root
    minus the never-tracked folders."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, timeout=30, check=True)
        return [p for p in out.stdout.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        paths = []
        for folder, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in UNTRACKED_DIRS and not d.endswith(".egg-info")]
            paths += [Path(folder, f).relative_to(REPO).as_posix() for f in files]
        return paths


def read_text(relative: str) -> str | None:
    """The file's text, or None for a binary or missing file."""
    try:
        data = (REPO / relative).read_bytes()
    except OSError:
        return None
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def citations() -> list[tuple[str, int, str, str]]:
    """(file, line, document, anchor) of every docs/troubleshooting.md#... and docs/real-stack.md#... link."""
    found = []
    for relative in tracked_files():
        if not relative.startswith(CITING):
            continue
        text = read_text(relative)
        for number, line in enumerate((text or "").splitlines(), 1):
            found += [(relative, number, m.group(1), m.group(2)) for m in CITATION.finditer(line)]
    return found


def test_anchor_rule_matches_github():
    assert github_anchor("Remote-write receiver not enabled") == "remote-write-receiver-not-enabled"
    assert github_anchor("Log agent → Loki") == "log-agent--loki"
    assert github_anchor("Cluster name, network or mesh ID mismatch") == "cluster-name-network-or-mesh-id-mismatch"
    assert github_anchor("Token rejected (401 Unauthorized)") == "token-rejected-401-unauthorized"
    assert headings("# Title\n```sh\n# a comment\n```\n## Part") == ["Title", "Part"]


def test_guide_headings_are_unique():
    """Each section keeps one stable anchor: no two headings of the guide collapse to the same one."""
    names = [github_anchor(h) for h in headings(GUIDE.read_text())]
    assert len(names) > 10
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_guide_links_to_its_own_sections_resolve():
    text = GUIDE.read_text()
    broken = sorted(set(re.findall(r"\]\(#([^)\s]+)\)", text)) - anchors(text))
    assert broken == [], f"the guide links to sections it does not have: {broken}"


def test_every_cited_section_exists():
    """Every docs/troubleshooting.md#<anchor> (and docs/real-stack.md#<anchor>) cited in the repository
    names a heading of that document."""
    found = citations()
    assert any(doc == "docs/troubleshooting.md" and not where.startswith("docs/") for where, _, doc, _ in found), \
        "no link to the guide found outside docs/: is the scan looking in the right place?"
    known = {doc: anchors(path.read_text()) for doc, path in DOCS.items()}
    broken = [f"{where}:{line}: {doc}#{anchor}" for where, line, doc, anchor in found if anchor not in known[doc]]
    assert broken == [], "links to sections that do not exist:\n" + "\n".join(broken)


def test_nothing_outside_docs_cites_the_external_reference_notes():
    """The external notes are not in the repository: messages and comments cite docs/ instead."""
    stale = []
    for relative in tracked_files():
        if relative.startswith("docs/"):
            continue
        text = read_text(relative) or ""
        stale += [f"{relative}:{n}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1)
                  if any(s in line for s in STALE)]
    assert stale == [], "cite docs/troubleshooting.md#<section> or docs/real-stack.md instead:\n" + "\n".join(stale)
