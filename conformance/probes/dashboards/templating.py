"""Grafana's template variables: the value each takes when a dashboard loads, and its interpolation into a query.

Read from Grafana 13.2 (see docs/real-stack.md): @grafana/scenes `MultiValueVariable` picks the value,
`dashboard-scene/utils/variables.ts` maps the JSON model, `@grafana/prometheus` and the Loki datasource escape it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

ALL = "$__all"
# templateSrv's variable syntaxes: $var, [[var]], [[var:format]], ${var}, ${var.field}, ${var:format}
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(.+)\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^query_result\((.+)\)\s*$", re.DOTALL)
_PROM_META = re.compile(r"[$^*{}\[\]+?.()|]")


class VariableSource(Protocol):
    """What a query variable asks its datasource (Grafana's metricFindQuery)."""

    def label_values(self, label: str, selector: str | None, start: float, end: float) -> list[str]: ...

    def query_result(self, expr: str, time: float) -> list[str]: ...


@dataclass(frozen=True)
class Value:
    """A variable's value as Grafana holds it after load."""

    value: str | list[str]
    multi: bool = False
    include_all: bool = False
    custom_all: str | None = None  # allValue, when All is selected: used as written, never escaped


@dataclass
class Resolution:
    values: dict[str, Value] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # variables whose options could not be read


def resolve(templating: list[dict], sources: dict[str, VariableSource], start: float, end: float,
            builtins: dict[str, str] | None = None) -> Resolution:
    """Every variable of a dashboard's `templating.list`, in order (later ones may use earlier ones)."""
    out = Resolution()
    for var in templating:
        name, kind = var.get("name"), var.get("type")
        if not name:
            continue
        current = var.get("current") or {}
        if kind in ("textbox", "constant"):
            value = current.get("value", var.get("query", "")) if kind == "textbox" else var.get("query", "")
            out.values[name] = Value(_scalar(value))
            continue
        if kind == "datasource":
            out.values[name] = Value(_scalar(current.get("value") or var.get("query", "")))
            continue
        if kind in ("custom", "interval"):
            options = _custom_options(str(var.get("query") or ""))
        elif kind == "query":
            source = sources.get(datasource_type(var.get("datasource")))
            query = var.get("query")
            query = query.get("query", "") if isinstance(query, dict) else str(query or "")
            query = interpolate(query, out.values, builtins or {}, datasource_type(var.get("datasource")))
            try:
                texts = _find(source, query, start, end)
            except Exception as exc:  # the variable stays empty, as in Grafana; the check says why
                out.problems.append(f"variable {name} ({query}): {exc}")
                texts = []
            options = _sort(_apply_regex(texts, var.get("regex") or ""), int(var.get("sort") or 0))
        else:
            continue  # adhoc, groupby, ...: add nothing to the dashboards' queries here
        out.values[name] = select(var, options)
    return out


def select(var: dict, options: list[str]) -> Value:
    """The value after load: the current one if it is an option, else All (includeAll) or the first option."""
    multi, include_all = bool(var.get("multi")), bool(var.get("includeAll"))
    all_value = var.get("allValue") or None
    current = var.get("current") or {}
    value, text = current.get("value"), current.get("text")

    def everything() -> Value:
        return Value(list(options) if all_value is None else ALL, multi, include_all, all_value)

    if not options:
        if include_all:
            return everything()
        return Value([] if multi else "", multi, include_all)
    if value == ALL or (isinstance(value, list) and value[:1] == [ALL]):
        if include_all:
            return everything()
        return Value([options[0]] if multi else options[0], multi, include_all)
    if multi:
        valid = [v for v in (value if isinstance(value, list) else [value]) if v in options]
        if valid:
            return Value(valid, multi, include_all)
        return everything() if include_all else Value([options[0]], multi, include_all)
    for candidate in (value, text):
        if isinstance(candidate, str) and candidate in options:
            return Value(candidate, multi, include_all)
    return everything() if include_all else Value(options[0], multi, include_all)


def interpolate(expr: str, values: dict[str, Value], builtins: dict[str, str], datasource: str) -> str:
    """templateSrv.replace with the datasource's escaping; unknown variables stay as written (as Grafana leaves them)."""

    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in builtins:
            return builtins[name]
        if name not in values:
            return m.group(0)
        return format_value(values[name], fmt, datasource)

    return VARIABLE.sub(one, expr)


def format_value(v: Value, fmt: str | None, datasource: str) -> str:
    if v.custom_all is not None and v.value == ALL:
        return "All" if fmt == "text" else v.custom_all
    value = v.value
    if fmt:
        return _FORMATS.get(fmt.split(":")[0], _FORMATS["glob"])(value)
    special, regular = (_loki_special, _loki_regular) if datasource == "loki" else (_prom_special, _prom_regular)
    if not v.multi and not v.include_all:
        return regular(value) if isinstance(value, str) else ",".join(value)
    if isinstance(value, str):
        return special(value)
    escaped = [special(x) for x in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def datasource_type(ds: Any) -> str:
    """loki or prometheus, from a datasource reference ({type, uid}, a name, or ${DS_LOKI})."""
    text = (ds.get("type") or ds.get("uid") or "") if isinstance(ds, dict) else str(ds or "")
    return "loki" if "loki" in text.lower() else "prometheus"


# -- escaping (classic, without the prometheusSpecialCharsInLabelValues toggle) --------------------
def _prom_regular(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\\\'")


def _prom_special(s: str) -> str:
    return _PROM_META.sub(lambda m: "\\\\" + m.group(0), s.replace("\\", "\\\\\\\\"))


def _loki_regular(s: str) -> str:
    return s.replace("'", "\\\\'")


def _loki_special(s: str) -> str:
    return _loki_regular(_PROM_META.sub(lambda m: "\\\\" + m.group(0), s.replace("\\", "\\\\\\\\")))


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


_FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "raw": lambda v: v if isinstance(v, str) else ",".join(v),
    "regex": lambda v: (lambda e: e[0] if len(e) == 1 else "(" + "|".join(e) + ")")(
        [re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), x) for x in _listed(v)]),
    "pipe": lambda v: "|".join(_listed(v)),
    "csv": lambda v: ",".join(_listed(v)),
    "glob": lambda v: "{" + ",".join(v) + "}" if isinstance(v, list) and len(v) > 1 else ",".join(_listed(v)),
    "json": lambda v: json.dumps(v),
    "text": lambda v: " + ".join(_listed(v)),
    "doublequote": lambda v: ",".join('"' + x.replace('"', '\\"') + '"' for x in _listed(v)),
    "singlequote": lambda v: ",".join("'" + x.replace("'", "\\'") + "'" for x in _listed(v)),
}


# -- options -----------------------------------------------------------------------------------------
def _find(source: VariableSource | None, query: str, start: float, end: float) -> list[str]:
    if not query.strip():
        return []
    if source is None:
        raise LookupError("no datasource to ask")
    if m := _LABEL_VALUES.match(query):
        selector = m.group(1)
        if selector is not None and selector.replace(" ", "") in ("", "{}"):
            selector = None
        return source.label_values(m.group(2).strip(), selector, start, end)
    if m := _QUERY_RESULT.match(query):
        return source.query_result(m.group(1), end)
    raise ValueError("only label_values(...) and query_result(...) variables are resolved")


def _apply_regex(texts: list[str], regex: str) -> list[str]:
    """Grafana's variable regex: keep matches; the value is the `value` group, else group 1, else the match."""
    seen: list[str] = []
    pattern = _js_regex(regex) if regex else None
    for text in texts:
        value = text
        if pattern is not None:
            m = pattern.search(text)
            if not m:
                continue
            groups = m.groupdict()
            value = groups.get("value") or (m.group(1) if m.re.groups else m.group(0))
            if value is None:
                continue
        if value not in seen:
            seen.append(value)
    return seen


def _js_regex(text: str) -> re.Pattern:
    m = re.fullmatch(r"/(.*)/([gimsuy]*)", text, re.DOTALL)
    body, flags = (m.group(1), m.group(2)) if m else (text, "")
    body = body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    return re.compile(body, (re.IGNORECASE if "i" in flags else 0) | (re.MULTILINE if "m" in flags else 0)
                      | (re.DOTALL if "s" in flags else 0))


def _sort(options: list[str], sort: int) -> list[str]:
    """VariableSort: 1/2 alphabetical, 3/4 numerical, 5/6 alphabetical case-insensitive, 7/8 natural."""
    def number(s: str) -> float:
        m = re.search(r"\d+", s)
        return float(m.group(0)) if m else -1

    def natural(s: str) -> list:
        return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", s)]

    keys: dict[int, Callable[[str], Any]] = {1: str, 3: number, 5: str.lower, 7: natural}
    if sort <= 0 or sort > 8:
        return options
    return sorted(options, key=keys[sort - (sort + 1) % 2], reverse=sort % 2 == 0)


def _custom_options(query: str) -> list[str]:
    """A custom variable's comma-separated options (`\\,` escapes a comma; `text : value` takes the value)."""
    out = []
    for part in re.findall(r"(?:\\,|[^,])+", query):
        part = part.strip().replace("\\,", ",")
        m = re.fullmatch(r"(.*?)\s+:\s+(.*)", part)
        out.append(m.group(2) if m else part)
    return out


def _scalar(value: Any) -> str:
    return value[0] if isinstance(value, list) and value else str(value if value is not None else "")


def query_result_texts(data: dict) -> list[str]:
    """Grafana's text for each sample of query_result(): `name{k="v",...} value timestamp_ms`."""
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        return [str(result[1]) if result else ""]
    texts = []
    for sample in result or []:
        labels = dict(sample.get("metric") or {})
        name = labels.pop("__name__", "")
        ts, val = sample["value"]
        stamp = float(ts) * 1000
        stamp_text = str(int(stamp)) if stamp == int(stamp) else repr(stamp)
        texts.append(name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} " + f"{val} {stamp_text}")
    return texts
