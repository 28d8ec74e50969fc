"""FakeLoki answers the recorded requests as the real Loki 2.9.3 and 3.7.6 did (../shared/contracts/loki-<version>).

The recordings and the scripts that replay them live outside the project (../shared, beside the repo
root); a script is imported from there, never copied. A difference fails the test unless it is one of
NONDETERMINISM (both versions) or NONDETERMINISM_3X (3.7.6): what two runs of the same real server may
answer differently, as each recording's README lists it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from types import ModuleType
from typing import Any, Callable

import pytest

from tests.fakes.loki import FakeLoki
from tests.shared import shared



def _equal_timestamps_any_order(rec: dict[str, Any]) -> dict[str, Any]:
    """Within a stream, a run of entries with the same timestamp is compared as a set."""
    streams = (rec.get("values") or {}).get("streams") if isinstance(rec.get("values"), dict) else None
    for s in streams or []:
        values, out, i = s["values"], [], 0
        while i < len(values):
            j = i
            while j < len(values) and values[j][0] == values[i][0] and values[i][0] != "?":  # "?": an unnamed time
                j += 1
            out += sorted(values[i:max(j, i + 1)])
            i = max(j, i + 1)
        s["values"] = out
    return rec


def _streams_any_order(rec: dict[str, Any]) -> dict[str, Any]:
    """Streams (and series) are compared in label order, whatever order they came in."""
    values = rec.get("values")
    if isinstance(values, dict):
        for key in ("streams", "matrix", "vector"):
            if isinstance(values.get(key), list):
                values[key] = sorted(values[key], key=lambda s: json.dumps(s.get("stream", s.get("metric")), sort_keys=True))
        if isinstance(values.get("data"), list) and values["data"] and isinstance(values["data"][0], dict):
            values["data"] = sorted(values["data"], key=lambda d: json.dumps(d, sort_keys=True))
    return rec


# The only differences forgiven, each with why the real server itself does not repeat it.
NONDETERMINISM: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "order of streams or series": (
        "Loki returns streams in the order its split-by-interval merge finishes and series in hash "
        "order; the replay script already sorts both (loki_contract.py canonical), this keeps it so",
        _streams_any_order,
    ),
    "entries with equal timestamps": (
        "Loki merges entries by timestamp only (a loser tree over the ingester and store iterators, "
        "grafana/loki v2.9.3 pkg/iter/entry_iterator.go): entries of one stream at one time have no set order",
        _equal_timestamps_any_order,
    ),
}


# Requests whose method the path does not take, on 3.7.6: 405 with an empty body, or 404 `404 page not found`.
METHOD_MISMATCH_3X = ("push GET", "push DELETE", "label values DELETE")


def _method_mismatch_either_answer(name: str, rec: dict[str, Any]) -> dict[str, Any]:
    """A listed method mismatch answered 404 `404 page not found` counts as the 405 with an empty body."""
    if name in METHOD_MISMATCH_3X and rec.get("status") == 404 and rec.get("text") == "404 page not found\n":
        return {"status": 405, "text": ""}
    return rec


# Loki 3.7.6 (../shared/contracts/loki-3.7.6/README.md): the two above, and one more. Its fourth, the
# duration of `query_range 30 days` (20-60 s on the real server), is no difference in an answer.
NONDETERMINISM_3X: dict[str, tuple[str, Callable[[str, dict[str, Any]], dict[str, Any]]]] = {
    "a method the path does not take: 405 or 404": (
        "dskit initialises modules in Go map order and gorilla/mux forgets a method mismatch when a later route "
        "lists its methods before its path; 2 of 6 fresh real starts answered 404 `404 page not found`",
        _method_mismatch_either_answer,
    ),
}

VERSIONS = ("2.9.3", "3.7.6")


def normalised(rec: Any, name: str = "", version: str = "2.9.3") -> Any:
    rec = copy.deepcopy(rec)
    if isinstance(rec, dict):
        for _, fold in NONDETERMINISM.values():
            rec = fold(rec)
        for _, named_fold in (NONDETERMINISM_3X.values() if version != "2.9.3" else ()):
            rec = named_fold(name, rec)
    return rec


def differences(golden: dict[str, Any], got: dict[str, Any], version: str = "2.9.3") -> list[str]:
    """One line per request answered otherwise than the recording, after the version's forgiven folds."""
    out = []
    for name, real in golden.items():
        mine = got.get(name)
        if normalised(real, name, version) != normalised(mine, name, version):
            out.append(f"{name}: real {json.dumps(real, sort_keys=True)[:600]} | fake {json.dumps(mine, sort_keys=True)[:600]}")
    return out


def contract(version: str) -> ModuleType:
    """The version's replay script, imported from ../shared."""
    script = shared("contracts", f"loki-{version}", "loki_contract.py")
    spec = importlib.util.spec_from_file_location(f"loki_contract_{version.replace('.', '_')}", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version", VERSIONS)
def test_fake_loki_matches_the_recording(version: str) -> None:
    script = contract(version)
    golden = json.loads(shared("contracts", f"loki-{version}", "golden.json").read_text())
    with FakeLoki(version=version) as fake:
        got = json.loads(json.dumps(script.run(fake.url), sort_keys=True))  # as `diff` compares it
    assert sorted(got) == sorted(golden), "the script sent other requests than the recording holds"
    bad = differences(golden, got, version)
    assert not bad, (f"{len(golden) - len(bad)}/{len(golden)} answers match the real Loki {version}:\n"
                     + "\n".join(bad))


# -- the comparison itself: it forgives exactly the listed nondeterminism --------------------------
def _streams_rec(*streams: tuple[dict[str, str], list[list[str]]]) -> dict[str, Any]:
    return {"status": 200, "values": {"resultType": "streams",
                                      "streams": [{"stream": s, "values": v} for s, v in streams]}}


def test_equal_timestamps_and_stream_order_are_forgiven() -> None:
    a, b = {"job": "a"}, {"job": "b"}
    real = _streams_rec((a, [["E0", "x"], ["E0", "y"], ["A1", "z"]]), (b, [["B1", "w"]]))
    fake = _streams_rec((b, [["B1", "w"]]), (a, [["E0", "y"], ["E0", "x"], ["A1", "z"]]))
    assert differences({"q": real}, {"q": fake}) == []


@pytest.mark.parametrize("fake_values", [
    [["A1", "z"], ["E0", "x"], ["E0", "y"]],  # distinct timestamps out of order
    [["?", "u3"], ["?", "u2"], ["A1", "z"]],  # two unnamed times are not known to be equal
    [["E0", "x"], ["A1", "z"]],  # an entry missing
])
def test_other_differences_are_reported_by_name(fake_values: list[list[str]]) -> None:
    real_values = [["?", "u2"], ["?", "u3"], ["A1", "z"]] if fake_values[0][0] == "?" else [["E0", "x"], ["E0", "y"], ["A1", "z"]]
    bad = differences({"query_range edge": _streams_rec(({"job": "a"}, real_values))},
                      {"query_range edge": _streams_rec(({"job": "a"}, fake_values))})
    assert len(bad) == 1 and bad[0].startswith("query_range edge: real ")


def test_a_missing_answer_or_other_status_is_reported() -> None:
    golden = {"ready": {"status": 200, "text": "ready\n"}, "push": {"status": 204, "text": ""}}
    assert [b.split(":")[0] for b in differences(golden, {"ready": {"status": 503, "text": "ready\n"}})] == ["ready", "push"]


def test_a_3x_method_mismatch_may_be_404_only_where_the_readme_says() -> None:
    """push GET answered 404 is forgiven on 3.7.6; a 404 for ready POST, or on 2.9.3, is not."""
    real, not_found = {"status": 405, "text": ""}, {"status": 404, "ctype": "text/plain", "text": "404 page not found\n"}
    assert differences({"push GET": real}, {"push GET": not_found}, "3.7.6") == []
    assert len(differences({"ready POST": real}, {"ready POST": not_found}, "3.7.6")) == 1
    assert len(differences({"push GET": real}, {"push GET": not_found}, "2.9.3")) == 1
