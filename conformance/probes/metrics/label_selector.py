"""Kubernetes label selectors as prometheus-operator v0.93 applies a Prometheus resource's monitor selectors.

apimachinery's metav1.LabelSelectorAsSelector: a nil selector selects nothing, an empty one ({}) everything;
matchLabels are equalities; matchExpressions In, NotIn (also true when the label is absent), Exists, DoesNotExist.
"""

from __future__ import annotations

from typing import Any


class InvalidSelector(ValueError):
    """A selector the API machinery refuses (the operator then selects nothing and logs the error)."""


def _requirements(selector: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    reqs = [(k, "In", [str(v)]) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), [str(v) for v in expr.get("values") or []]
        if op in ("In", "NotIn") and not values:
            raise InvalidSelector(f"{key} {op} needs values")
        if op in ("Exists", "DoesNotExist") and values:
            raise InvalidSelector(f"{key} {op} takes no values")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise InvalidSelector(f"{key}: unknown operator {op!r}")
        reqs.append((key, op, values))
    return reqs


def _holds(labels: dict[str, str], key: str, op: str, values: list[str]) -> bool:
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    return (key in labels) == (op == "Exists")


def unmet(selector: dict[str, Any] | None, labels: dict[str, str]) -> list[str]:
    """The requirements of `selector` that `labels` fail, each said as wanted ('release=kps'); [] when selected.

    A nil selector (None) selects nothing: ['(unset: selects nothing)']."""
    if selector is None:
        return ["(unset: selects nothing)"]
    return [describe_one(k, op, v) for k, op, v in _requirements(selector) if not _holds(labels, k, op, v)]


def describe_one(key: str, op: str, values: list[str]) -> str:
    if op == "In":
        return f"{key}={values[0]}" if len(values) == 1 else f"{key} in ({', '.join(values)})"
    if op == "NotIn":
        return f"{key} not in ({', '.join(values)})"
    return key if op == "Exists" else f"no {key} label"


def describe(selector: dict[str, Any] | None) -> str:
    """The selector as people read it: 'release=kps', 'everything' ({}), 'nothing' (unset)."""
    if selector is None:
        return "nothing (unset)"
    reqs = _requirements(selector)
    return ", ".join(describe_one(*r) for r in reqs) if reqs else "everything ({})"


def keys(selector: dict[str, Any] | None) -> list[str]:
    """The label keys a selector looks at, in its order."""
    if not selector:
        return []
    return list(dict.fromkeys([*(selector.get("matchLabels") or {}),
                               *(e.get("key", "") for e in selector.get("matchExpressions") or [])]))


def has(labels: dict[str, str], names: list[str]) -> str:
    """What `labels` carry of `names`: 'release=other', 'no release label'."""
    return ", ".join(f"{k}={labels[k]}" if k in labels else f"no {k} label" for k in names) or "no labels"
