"""Post-process pytest's JUnit file into one a CI dashboard renders well.

Each testcase becomes `<area>::<check>[<cluster>]` (classname = area marker, name =
the check's function name as words), its failure message the diagnosis's first
line (the hop), and the testsuite carries the run's properties. pytest's own nodeid
stays as a property so a reader can re-run exactly that check.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.core.redact import redact


def check_name(nodeid: str) -> str:
    """`suites/test_logs.py::test_log_canary_reaches_the_primary_loki[oke]` -> `log canary reaches the primary loki[oke]`."""
    function = nodeid.rsplit("::", 1)[-1]
    base, bracket, params = function.partition("[")
    words = base.removeprefix("test_").replace("_", " ")
    return f"{words}{bracket}{params}"


def legacy_key(nodeid: str) -> str:
    """The key pytest's own JUnit writer would give: `suites.test_logs::test_x[oke]`."""
    path, sep, rest = nodeid.partition("::")
    if not sep:
        return nodeid
    module = path.removesuffix(".py").replace("/", ".")
    return f"{module}::{rest.replace('::', '.')}"


def postprocess(path: Path, run_properties: dict[str, str]) -> None:
    """Rename the testcases, shorten failure messages, add run properties; mask secrets everywhere."""
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    root.set("name", "conformance")
    for suite in suites:
        suite.set("name", "conformance")
        _prepend_properties(suite, run_properties)
        for case in suite.findall("testcase"):
            _rename(case)
            for problem in (case.find("failure"), case.find("error")):
                if problem is not None:
                    # CI lists show the message: the hop and the verdict, not the whole evidence.
                    # (pytest's message is the whole diagnosis for a CheckFailure, the exception line otherwise.)
                    problem.set("message", headline(problem.get("message") or problem.text or ""))
    _redact(root)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def headline(text: str) -> str:
    """The first non-empty line of a diagnosis."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _rename(case: ET.Element) -> None:
    props = case.find("properties")
    values = {} if props is None else {p.get("name"): p.get("value", "") for p in props.findall("property")}
    nodeid = values.get("nodeid")
    if not nodeid:
        return  # not a conformance check (e.g. a collection error): leave pytest's names
    case.set("classname", values.get("area") or nodeid.split("::")[0])
    case.set("name", check_name(nodeid))


def _prepend_properties(suite: ET.Element, values: dict[str, str]) -> None:
    props = suite.find("properties")
    if props is None:
        props = ET.Element("properties")
        suite.insert(0, props)
    for i, (name, value) in enumerate(values.items()):
        props.insert(i, ET.Element("property", name=name, value=str(value)))


def _redact(element: ET.Element) -> None:
    for node in element.iter():
        for attr, value in node.attrib.items():
            node.set(attr, redact(value))
        if node.text:
            node.text = redact(node.text)
