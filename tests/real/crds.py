"""CustomResourceDefinitions built from tests/provision/schemas/, so the real API server validates our CRs.

Each schema (written from the upstream CRD at the pinned chart's version) becomes the openAPIV3Schema of a
namespaced CRD: `const` becomes a one-value `enum`, a type list int-or-string or nullable, an open node
x-kubernetes-preserve-unknown-fields; `additionalProperties: false` is left to the API server's pruning,
which a server-side apply with fieldValidation=Strict turns into a refusal naming the unknown field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[1] / "provision" / "schemas"
# dependentRequired (JSON Schema 2019-09) is not a field of apiextensions v1 JSONSchemaProps: the API server refuses a
# CRD that has it ("field not declared in schema"), so it is left out, as $schema and $comment are.
DROP = ("$schema", "$comment", "dependentRequired")


def _type_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}[type(value)]


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """One JSON-schema node as a structural CRD schema node."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROP:
            continue
        if key == "const":
            out["enum"] = [value]
            out.setdefault("type", _type_of(value))
        elif key == "properties":
            out["properties"] = {k: structural(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = structural(value)
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if "null" in value:
                out["nullable"] = True
            if sorted(kinds) == ["integer", "string"]:
                out["x-kubernetes-int-or-string"] = True  # what CRDs say for IntOrString
            elif len(kinds) == 1:
                out["type"] = kinds[0]
            else:
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = structural(value)
            # false: unknown fields are pruned, and refused under fieldValidation=Strict
        else:
            out[key] = value
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"x-kubernetes-preserve-unknown-fields": True}  # a list whose entries the schema leaves open
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def crd_for(path: Path) -> dict[str, Any]:
    """The CRD for schema file <group>-<version>-<Kind>.json."""
    group, version, kind = path.stem.rsplit("-", 2)
    schema = json.loads(path.read_text())
    body = {k: v for k, v in schema["properties"].items() if k not in ("apiVersion", "kind", "metadata")}
    top = {"type": "object", "properties": {k: structural(v) for k, v in body.items()}}
    required = [r for r in schema.get("required", []) if r in body]
    if required:
        top["required"] = required
    plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": top}, "subresources": {"status": {}}}]},
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd_for(p) for p in sorted(SCHEMAS.glob("*.json"))]
