"""Every check keeps a failing-path self-test (issue 21): a self-test that runs it failing and asserts its diagnosis.

The rule, read from the sources (no self-test is run): a self-test covers a check when it asserts and reads a check's
failure text (`.failure(` or `.failure_steady(` of tests/suite_runner.py) with an argument that names the check -- as
the JUnit report does ('<area>::<sentence>[...]') or as pytest's own writer did ('suites.test_<module>::test_<function>')
-- directly, through a local name, or through a module-level constant here or in another tests module (`from tests.x
import NAME`). Where the argument comes from a parameter (a table row, a helper's argument), every name the self-test
reaches through its decorators, constants and helpers counts. A check's skip reason or properties alone do not count."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FAILURE_READERS = {"failure", "failure_steady"}


@dataclass(frozen=True)
class Check:
    """A test function of suites/*.py, and the names a self-test may know it by."""

    module: str  # test_logs
    function: str  # test_log_canary_reaches_the_primary_loki

    @property
    def names(self) -> re.Pattern[str]:
        """'::log canary reaches the primary loki' (report name) or 'suites.test_logs::test_log_canary_...' (legacy),
        each ending where the name ends (a parameter, a format field, the string's end)."""
        sentence = re.escape(self.function.removeprefix("test_").replace("_", " "))
        legacy = re.escape(f"suites.{self.module}::{self.function}")
        return re.compile(rf"(::{sentence}|{legacy})(?=$|[\[{{\"'])")

    def __str__(self) -> str:
        return f"suites/{self.module}.py::{self.function}"


def checks(repo: Path) -> list[Check]:
    """Every check: each module-level test function of suites/test_*.py."""
    found = []
    for path in sorted((repo / "suites").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        found += [Check(path.stem, node.name) for node in tree.body
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")]
    return found


@dataclass
class Module:
    """A self-test module's top-level names: what each is bound to, and what it imports from other tests modules."""

    name: str
    defs: dict[str, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local name -> (tests module, its name)
    tests: list[ast.FunctionDef] = field(default_factory=list)


def read_modules(repo: Path) -> dict[str, Module]:
    """Every module under tests/, by its dotted name."""
    modules = {}
    for path in sorted((repo / "tests").rglob("*.py")):
        dotted = ".".join(path.relative_to(repo).with_suffix("").parts)
        module = Module(dotted)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.defs[node.name] = node
                if node.name.startswith("test_") and not isinstance(node, ast.ClassDef):
                    module.tests.append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            module.defs[name.id] = node
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests"):
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (node.module, alias.name)
        modules[dotted] = module
    return modules


@dataclass
class Reach:
    """What a definition reaches: the strings that may name a check, and how it reads failure texts."""

    strings: set[str] = field(default_factory=set)  # every string with '::' in it
    read: set[str] = field(default_factory=set)  # those a failure read's argument names
    reads_failure: bool = False
    loose: bool = False  # a failure read's argument comes from a parameter: it may name any string reached
    asserts: bool = False


def bindings(node: ast.AST) -> dict[str, list[ast.AST]]:
    """A function's local names and what each is bound to (assigned, iterated over, entered)."""
    found: dict[str, list[ast.AST]] = {}
    for sub in ast.walk(node):
        pairs = []
        if isinstance(sub, ast.Assign):
            pairs = [(t, sub.value) for t in sub.targets]
        elif isinstance(sub, (ast.AnnAssign, ast.NamedExpr)) and sub.value is not None:
            pairs = [(sub.target, sub.value)]
        elif isinstance(sub, (ast.For, ast.comprehension)):
            pairs = [(sub.target, sub.iter)]
        elif isinstance(sub, ast.withitem) and sub.optional_vars is not None:
            pairs = [(sub.optional_vars, sub.context_expr)]
        for target, value in pairs:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    found.setdefault(name.id, []).append(value)
    return found


def own_reach(module: Module, node: ast.AST) -> tuple[Reach, set[tuple[str, str]], set[tuple[str, str]]]:
    """What one definition holds itself, the top-level definitions (module, name) it names, and those its failure
    reads' arguments name."""
    found, names, read_names, local = Reach(), set(), set(), bindings(node)

    def top_level(name: str) -> tuple[str, str] | None:
        if name in module.defs:
            return module.name, name
        return module.imports.get(name)

    def argument(expr: ast.AST, followed: set[str]) -> None:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and "::" in sub.value:
                found.read.add(sub.value)
            elif isinstance(sub, ast.Name) and sub.id in local:
                if sub.id not in followed:
                    for value in local[sub.id]:
                        argument(value, followed | {sub.id})
            elif isinstance(sub, ast.Name):
                where = top_level(sub.id)
                if where:
                    read_names.add(where)
                else:
                    found.loose = True

    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and "::" in sub.value:
            found.strings.add(sub.value)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in FAILURE_READERS:
            found.reads_failure = True
            for arg in sub.args[:1]:
                argument(arg, set())
        elif isinstance(sub, ast.Assert):
            found.asserts = True
        elif isinstance(sub, ast.Name) and top_level(sub.id):
            names.add(top_level(sub.id))
    return found, names, read_names


def reach(modules: dict[str, Module], module: Module, test: ast.AST, cache: dict) -> Reach:
    """The test's own reach and that of every function or constant it names (here or from tests/), once each."""
    total, seen, todo, read_names = Reach(), set(), [(module, test)], set()
    while todo:
        mod, node = todo.pop()
        if (mod.name, id(node)) not in cache:
            cache[(mod.name, id(node))] = own_reach(mod, node)
        own, names, read = cache[(mod.name, id(node))]
        total.strings |= own.strings
        total.read |= own.read
        read_names |= read
        total.reads_failure |= own.reads_failure
        total.loose |= own.loose
        total.asserts |= own.asserts
        for source, name in names - seen:
            seen.add((source, name))
            other = modules.get(source)
            target = other.defs.get(name) if other is not None else None
            if target is not None and target is not node and not isinstance(target, ast.ClassDef):
                todo.append((other, target))
    for source, name in read_names:
        other = modules.get(source)
        target = other.defs.get(name) if other is not None else None
        if target is not None and not isinstance(target, ast.ClassDef):
            total.read |= reach(modules, other, target, cache).strings
    return total


def failing_path_tests(repo: Path) -> dict[Check, list[str]]:
    """For each check, the self-tests (`file::function`) that run it failing and assert on its diagnosis."""
    modules, cache = read_modules(repo), {}
    covering: dict[Check, list[str]] = {check: [] for check in checks(repo)}
    for module in modules.values():
        for test in module.tests:
            seen = reach(modules, module, test, cache)
            if not (seen.reads_failure and seen.asserts):
                continue
            named = seen.strings if seen.loose else seen.read
            for check, tests in covering.items():
                if any(check.names.search(s) for s in named):
                    tests.append(f"{module.name.replace('.', '/')}.py::{test.name}")
    return covering


COVERING = failing_path_tests(REPO)


@pytest.mark.parametrize("check", list(COVERING), ids=str)
def test_every_check_has_a_self_test_of_its_failing_path(check: Check) -> None:
    sentence = check.function.removeprefix("test_").replace("_", " ")
    assert COVERING[check], (f"{check}: no self-test runs it failing and asserts its diagnosis (none gives its case, "
                             f"'<area>::{sentence}' or 'suites.{check.module}::{check.function}', to a .failure read)")


def test_the_rule_sees_checks_and_self_tests() -> None:
    """The rule reads something: the suites have checks and most are found through more than one self-test."""
    assert len(COVERING) > 40
    assert sum(len(tests) > 1 for tests in COVERING.values()) > len(COVERING) // 2


def test_a_check_whose_name_is_only_beside_a_pass_or_a_skip_has_no_failing_path_test(tmp_path: Path) -> None:
    """The rule on a tree of its own: a failure read of one check's case does not count for its neighbour's name."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_area.py").write_text("def test_a_is_ready():\n    pass\n\n\n"
                                                     "def test_b_is_ready():\n    pass\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_area_paths.py").write_text(
        'A = "area::a is ready"\nB = "suites.test_area::test_b_is_ready"\n\n\n'
        "def test_a_down(run):\n    assert 'down' in run.failure(A)\n    assert run.skip_reason(B)\n\n\n"
        "def test_b_passes(run):\n    assert run.properties(B)['outcome'] == 'passed'\n")
    covering = {str(check): tests for check, tests in failing_path_tests(tmp_path).items()}
    assert covering == {"suites/test_area.py::test_a_is_ready": ["tests/test_area_paths.py::test_a_down"],
                        "suites/test_area.py::test_b_is_ready": []}
