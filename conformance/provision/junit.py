"""JUnit for a bring-up that failed before the suites ran, and a pointer to the bundle for one that ran."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def write_failure(path: Path, phase: str, message: str, bundle: Path | None) -> None:
    """One failing testcase named for the phase; the diagnosis is the message, the bundle path in system-out."""
    suite = ET.Element("testsuite", name="bring-up", tests="1", failures="1", errors="0", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="bring-up", name=phase)
    failure = ET.SubElement(case, "failure", message=message)
    failure.text = message
    out = ET.SubElement(case, "system-out")
    out.text = f"diagnostics bundle: {bundle}" if bundle else "diagnostics bundle: none (nothing was created)"
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def annotate(path: Path, bundle: Path) -> None:
    """Point an existing report at the bundle: a `diagnostics` property on every testsuite and
    a system-out line on every failing testcase (where CI shows it next to the failure)."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        ET.SubElement(props, "property", name="diagnostics", value=str(bundle))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                out = case.find("system-out")
                if out is None:
                    out = ET.SubElement(case, "system-out")
                out.text = f"diagnostics bundle: {bundle}\n" + (out.text or "")
    tree.write(path, encoding="utf-8", xml_declaration=True)
