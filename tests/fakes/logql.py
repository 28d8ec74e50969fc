"""A small LogQL engine for FakeLoki: selectors, log pipelines and the metric queries the suites send.

Semantics follow grafana/loki v2.9.3 (pkg/logql/syntax, pkg/logql/log: parser.go, label_filter.go,
fmt.go, logfmt/decode.go) as read, not copied. Errors read like Loki's (`parse error at line 1, col N:
syntax error: unexpected X, expecting Y`). Anything this subset does not implement is rejected with a
parse error that says so, so a query never succeeds silently with the wrong meaning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Union

# Loki's yacc token names: punctuation shows as its text, keywords and literals by name.
_PUNCT = ["|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "=", "|", "+", "-",
          "*", "/", "%", "^", ">", "<"]
_RANGE_FUNCS = {
    "count_over_time", "rate", "rate_counter", "bytes_over_time", "bytes_rate", "avg_over_time",
    "sum_over_time", "min_over_time", "max_over_time", "stdvar_over_time", "stddev_over_time",
    "quantile_over_time", "first_over_time", "last_over_time", "absent_over_time",
}
_LOG_RANGE_FUNCS = {"count_over_time", "rate", "bytes_over_time", "bytes_rate"}  # those without `| unwrap`
_AGG_FUNCS = {"sum", "avg", "max", "min", "count", "stddev", "stdvar", "bottomk", "topk", "sort", "sort_desc"}
_SUPPORTED_AGGS = {"sum", "avg", "max", "min", "count"}
_UNSUPPORTED_STAGES = {"regexp", "pattern", "unpack", "unwrap", "label_format", "drop", "keep", "decolorize",
                       "distinct", "ip"}
ERROR_LABEL, ERROR_DETAILS_LABEL = "__error__", "__error_details__"
JSON_PARSER_ERR, LABEL_FILTER_ERR = "JSONParserErr", "LabelFilterErr"

EMPTY_MATCHER_MSG = (
    "queries require at least one regexp or equality matcher that does not have an empty-compatible value. "
    'For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)
# buger/jsonparser's errors, which Loki's JSON parser puts in __error_details__
MALFORMED_OBJECT = "Value looks like object, but can't find closing '}' symbol"
MALFORMED_JSON = "Malformed JSON error"
MALFORMED_ARRAY = "Value is array, but can't find closing ']' symbol"


class LogQLError(Exception):
    """A Loki ParseError; str() is the exact body Loki writes (status 400)."""


class PipelineError(Exception):
    """logqlmodel.PipelineError: a metric query met a series carrying __error__ (400)."""

    def __init__(self, labels: dict[str, str]) -> None:
        kind = labels.get(ERROR_LABEL, "")
        super().__init__(
            f"pipeline error: '{kind}' for series: '{labels_string(labels)}'.\n"
            f"Use a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\n"
            "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
            "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n")


def labels_string(labels: dict[str, str]) -> str:
    """labels.Labels.String(): `{a="1", b="2"}` sorted by name."""
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def _parse_error(msg: str, col: int = 0) -> LogQLError:
    if col == 0:
        return LogQLError(f"parse error : {msg}")
    return LogQLError(f"parse error at line 1, col {col}: {msg}")


# -- Go regexp (RE2) errors ----------------------------------------------------------------
def go_regexp_error(expr: str) -> str | None:
    """regexp.Compile's error text for expr (`error parsing regexp: <code>: `<fragment>``), or None if it compiles."""
    def err(code: str, fragment: str) -> str:
        return f"error parsing regexp: {code}: `{fragment}`"

    perl = re.search(r"\(\?(?:[=!]|<[=!])", expr)  # lookarounds: Python has them, RE2 does not
    if perl:
        return err("invalid or unsupported Perl syntax", expr[perl.start():perl.end()])
    backref = re.search(r"(?<!\\)(?:\\\\)*(\\[1-9])", expr)
    if backref:
        return err("invalid escape sequence", backref.group(1))
    try:
        re.compile(_python_regexp(expr))
        return None
    except re.error as exc:
        pos = exc.pos or 0
        msg = str(exc.msg)
        if msg.startswith("missing ), unterminated subpattern"):
            return err("missing closing )", expr)
        if msg.startswith("unbalanced parenthesis"):
            return err("unexpected )", expr)
        if msg.startswith("unterminated character set"):
            return err("missing closing ]", expr[pos:])
        if msg.startswith("nothing to repeat"):
            return err("missing argument to repetition operator", expr[pos:pos + 1])
        if msg.startswith("multiple repeat"):
            return err("invalid nested repetition operator", expr[max(pos - 1, 0):pos + 1])
        if msg.startswith("bad escape"):
            return err("invalid escape sequence", expr[pos:pos + 2])
        if msg.startswith("bad character range"):
            return err("invalid character class range", expr[pos:].split("]")[0])
        if msg.startswith("unknown extension") or msg.startswith("unknown flag"):
            return err("invalid or unsupported Perl syntax", expr[pos:pos + 3])
        return f"error parsing regexp: {msg}"


def _python_regexp(expr: str) -> str:
    """The few RE2 spellings Python's re lacks: \\z (end of text)."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", expr)


# -- tokens ------------------------------------------------------------------------------------
@dataclass
class Token:
    kind: str  # yacc-style name: IDENTIFIER, STRING, NUMBER, RANGE, $end, a function name, or punctuation
    text: str
    col: int  # 1-based column of the token start
    value: object = None


def _duration_ns(text: str) -> int | None:
    """Prometheus-style duration (1h30m, 5m, 10s, 100ms) in ns, or None."""
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", text):
        return None
    units = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
             "w": 7 * 86400 * 10**9, "y": 365 * 86400 * 10**9}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def _unquote(raw: str, col: int) -> str:
    quote = raw[0]
    body = raw[1:-1]
    if quote == "`":
        return body
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
               "f": "\f", "v": "\v"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            raise _parse_error("invalid syntax", col)
        out.append(ch)
        i += 1
    return "".join(out)


class _Lexer:
    def __init__(self, text: str, vector_supported: bool) -> None:
        self.text = text
        self.vector_supported = vector_supported

    def tokens(self) -> list[Token]:
        text, i, out = self.text, 0, []
        while i < len(text):
            ch = text[i]
            col = i + 1
            if ch.isspace():
                i += 1
                continue
            if ch in "\"`":
                end = i + 1
                while end < len(text) and text[end] != ch:
                    end += 2 if (text[end] == "\\" and ch == '"') else 1
                if end >= len(text):
                    raise _parse_error("literal not terminated", col)
                raw = text[i : end + 1]
                out.append(Token("STRING", raw, col, _unquote(raw, col)))
                i = end + 1
                continue
            if ch == "[":
                end = text.find("]", i)
                if end < 0:
                    raise _parse_error("missing closing ']' in duration", col)
                dur = _duration_ns(text[i + 1 : end].strip())
                if dur is None:
                    raise _parse_error(f'not a valid duration string: "{text[i + 1 : end]}"', col)
                out.append(Token("RANGE", text[i : end + 1], col, dur))
                i = end + 1
                continue
            if ch.isdigit():
                m = re.match(r"\d+(\.\d+)?", text[i:])
                assert m
                out.append(Token("NUMBER", m.group(0), col, float(m.group(0))))
                i += len(m.group(0))
                continue
            if ch.isalpha() or ch == "_":
                m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
                assert m
                word = m.group(0)
                rest = text[i + len(word) :].lstrip()
                grouped = re.match(r"(by|without)\s*\(", rest)
                is_call = rest.startswith("(") or grouped is not None
                if word in ("by", "without"):
                    out.append(Token(word, word, col))
                elif is_call and (word in _RANGE_FUNCS or word in _AGG_FUNCS or (word == "vector" and self.vector_supported)):
                    out.append(Token(word.upper(), word, col))
                else:
                    out.append(Token("IDENTIFIER", word, col, word))
                i += len(word)
                continue
            for p in _PUNCT:
                if text.startswith(p, i):
                    out.append(Token(p, p, col))
                    i += len(p)
                    break
            else:  # Loki's lexer hands any other character to the parser as an IDENTIFIER
                out.append(Token("IDENTIFIER", ch, col, ch))
                i += 1
        out.append(Token("$end", "", len(text) + 1))
        return out


# -- label sets as a pipeline sees them -----------------------------------------------------------
@dataclass
class Labels:
    """log.LabelsBuilder: the stream's labels, what the parsers add, and the error of this line."""

    base: dict[str, str]
    added: dict[str, str] = field(default_factory=dict)
    error: str = ""
    details: str = ""

    def get(self, name: str) -> str:
        if name == ERROR_LABEL:
            return self.error
        if name == ERROR_DETAILS_LABEL:
            return self.details
        return self.added.get(name, self.base.get(name, ""))

    def has(self, name: str) -> bool:
        return name in self.added or name in self.base

    def set_error(self, kind: str, details: str) -> None:
        if not self.error:
            self.error, self.details = kind, details

    def result(self) -> dict[str, str]:
        out = {**self.base, **self.added}
        if self.error:
            out[ERROR_LABEL] = self.error
            if self.details:
                out[ERROR_DETAILS_LABEL] = self.details
        return {k: v for k, v in out.items() if v != ""}


def sanitize_key(key: str) -> str:
    """sanitizeLabelKey(key, true): trimmed, a leading digit prefixed by _, other runes than [A-Za-z0-9_] as _."""
    key = key.strip()
    if key and key[0].isdigit():
        key = "_" + key
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


# -- pipeline stages --------------------------------------------------------------------------------
@dataclass
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def matches_value(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(_python_regexp(self.value), actual, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit

    def matches(self, labels: dict[str, str]) -> bool:
        return self.matches_value(labels.get(self.name, ""))


@dataclass
class LineFilter:
    op: str  # "|=", "!=", "|~", "!~"
    value: str

    def __str__(self) -> str:
        return f"{self.op} {json.dumps(self.value)}"

    def compile_error(self) -> str | None:
        return go_regexp_error(self.value) if self.op in ("|~", "!~") else None

    def process(self, line: str, labels: Labels) -> str | None:
        if self.op in ("|=", "!="):
            hit = self.value in line
        else:
            hit = re.search(_python_regexp(self.value), line) is not None
        return line if hit == (self.op in ("|=", "|~")) else None


@dataclass
class JSONParser:
    """`| json`: top-level and nested (joined by _) string, number and boolean fields become labels."""

    def process(self, line: str, labels: Labels) -> str | None:
        error = _json_object_each(line, "", labels)
        if error:
            labels.set_error(JSON_PARSER_ERR, error)
        return line


def _extracted_key(labels: Labels, key: str) -> str:
    return key + "_extracted" if key in labels.base else key


def _json_object_each(text: str, prefix: str, labels: Labels) -> str | None:
    """jsonparser.ObjectEach over text, setting labels as Loki's JSONParser does; the error text, if any."""
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "{":
        return MALFORMED_OBJECT
    i = _skip_ws(text, i + 1)
    if i >= len(text):
        return MALFORMED_JSON
    if text[i] == "}":
        return None
    while i < len(text):
        if text[i] == "}":
            return None
        if text[i] != '"':
            return MALFORMED_OBJECT
        try:
            key, i = decoder.raw_decode(text, i)
        except ValueError:
            return MALFORMED_JSON
        i = _skip_ws(text, i)
        if i >= len(text) or text[i] != ":":
            return MALFORMED_JSON
        i = _skip_ws(text, i + 1)
        if i < len(text) and text[i] == "{":
            end = _value_end(text, i)
            if end is None:
                return MALFORMED_OBJECT
            name = (prefix + "_" if prefix else "") + _sanitize_prefix_part(key, not prefix)
            error = _json_object_each(text[i:end], name, labels)
            if error:
                return error
            i = end
        else:
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                return MALFORMED_JSON if i < len(text) and text[i] == '"' else \
                    "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol"
            raw = text[i:end]
            i = end
            if isinstance(value, (str, int, float, bool)) and value is not None:
                name = _extracted_key(labels, (prefix + "_" + _sanitize_prefix_part(key, False)) if prefix
                                      else sanitize_key(key))
                if isinstance(value, bool):
                    labels.added[name] = "true" if value else "false"
                elif isinstance(value, str):
                    labels.added[name] = value
                else:
                    labels.added[name] = raw
        i = _skip_ws(text, i)
        if i >= len(text):
            return MALFORMED_ARRAY
        if text[i] == "}":
            return None
        if text[i] != ",":
            return MALFORMED_OBJECT
        i = _skip_ws(text, i + 1)
        if i >= len(text):
            return MALFORMED_ARRAY
    return MALFORMED_OBJECT


def _sanitize_prefix_part(key: str, first: bool) -> str:
    """appendSanitized: a leading digit gets _ only at the start of the whole key."""
    key = key.strip()
    if first and key and key[0].isdigit():
        key = "_" + key
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _value_end(text: str, i: int) -> int | None:
    try:
        _, end = json.JSONDecoder().raw_decode(text, i)
        return end
    except ValueError:
        return None


@dataclass
class LogfmtParser:
    """`| logfmt` (not strict, empty values dropped): key=value pairs become labels; bad pairs are skipped."""

    def process(self, line: str, labels: Labels) -> str | None:
        for key, value in logfmt_pairs(line):
            name = sanitize_key(key)
            if not name or not value:
                continue
            labels.added[_extracted_key(labels, name)] = value
        return line


def logfmt_pairs(line: str) -> list[tuple[str, str]]:
    """The (key, value) pairs loki's logfmt decoder (pkg/logql/log/logfmt) yields, skipping invalid ones."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] <= " ":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and line[i] > " " and line[i] not in '="':
            i += 1
        if i < n and line[i] == '"':  # a quote in a key: skip this token
            while i < n and line[i] > " ":
                i += 1
            continue
        key = line[start:i]
        if i >= n or line[i] != "=":
            out.append((key, ""))  # a bare key
            continue
        if not key:  # "=value" without a key
            while i < n and line[i] > " ":
                i += 1
            continue
        i += 1
        if i >= n or line[i] <= " ":
            out.append((key, ""))
            continue
        if line[i] == '"':
            j, esc = i + 1, False
            while j < n:
                if esc:
                    esc = False
                elif line[j] == "\\":
                    esc = True
                elif line[j] == '"':
                    break
                j += 1
            if j >= n:
                break  # unterminated quoted value: the rest of the line is dropped
            raw = line[i : j + 1]
            try:
                value = json.loads(raw) if "\\" in raw else raw[1:-1]
            except ValueError:
                value = None
            i = j + 1
            if value is not None:
                out.append((key, value))
            continue
        start = i
        while i < n and line[i] > " " and line[i] not in '="':
            i += 1
        if i < n and line[i] in '="':  # an unexpected = or " in a value: skip the token
            while i < n and line[i] > " ":
                i += 1
            continue
        out.append((key, line[start:i]))
    return out


@dataclass
class LabelFilter:
    """`| name op value`: string matchers, or numeric comparisons (==, !=, >, >=, <, <=) with a number."""

    name: str
    op: str
    value: str | float

    def keeps(self, labels: Labels) -> bool:
        if isinstance(self.value, str):
            return Matcher(self.name, self.op, self.value).matches_value(labels.get(self.name))
        if labels.error:
            return True  # only string matchers filter out lines with an error
        if not labels.has(self.name):
            return False
        try:
            actual = float(labels.get(self.name))
        except ValueError:
            labels.set_error(LABEL_FILTER_ERR, f'strconv.ParseFloat: parsing "{labels.get(self.name)}": invalid syntax')
            return True
        v = self.value
        return {"==": actual == v, "=": actual == v, "!=": actual != v, ">": actual > v, ">=": actual >= v,
                "<": actual < v, "<=": actual <= v}[self.op]


@dataclass
class LabelFilterExpr:
    """Label filters joined by `and` (or `,`, or a space) and `or`; and binds tighter."""

    any_of: list[list[LabelFilter]]

    def process(self, line: str, labels: Labels) -> str | None:
        return line if any(all(f.keeps(labels) for f in group) for group in self.any_of) else None


@dataclass
class LineFormat:
    """`| line_format "..."`: the subset of text/template used here ({{.label}}, {{ __line__ }})."""

    parts: list[tuple[str, str]]  # ("text", s) or ("label", name) or ("line", "")

    def process(self, line: str, labels: Labels) -> str | None:
        out = []
        for kind, value in self.parts:
            out.append(value if kind == "text" else line if kind == "line" else labels.get(value))
        return "".join(out)


def _line_format_parts(template: str, col: int) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    for i, piece in enumerate(re.split(r"\{\{-?\s*(.*?)\s*-?\}\}", template)):
        if i % 2 == 0:
            if "{{" in piece or "}}" in piece:
                raise _parse_error("line_format template not supported by FakeLoki", col)
            if piece:
                parts.append(("text", piece))
        elif re.fullmatch(r"\.[A-Za-z_][A-Za-z0-9_]*", piece):
            parts.append(("label", piece[1:]))
        elif piece == "__line__":
            parts.append(("line", ""))
        else:
            raise _parse_error(f"line_format action {{{{{piece}}}}} not supported by FakeLoki", col)
    return parts


Stage = Union[LineFilter, JSONParser, LogfmtParser, LabelFilterExpr, LineFormat]


@dataclass
class LogQuery:
    """`{matchers} | stage ...`: selects streams, then runs each line through the stages."""

    matchers: list[Matcher]
    stages: list[Stage] = field(default_factory=list)

    @property
    def filters(self) -> list[Stage]:
        return self.stages

    def selects(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def process(self, line: str, stream: dict[str, str]) -> tuple[str, dict[str, str]] | None:
        """(line, labels) after the pipeline, or None if a stage drops the line."""
        labels = Labels(dict(stream))
        current: str | None = line
        for stage in self.stages:
            current = stage.process(current, labels)
            if current is None:
                return None
        return current, labels.result()

    def keeps(self, line: str) -> bool:
        return self.process(line, {}) is not None

    def runtime_error(self) -> str | None:
        """A stage that only fails when the querier builds the pipeline (a line filter's bad regexp)."""
        for stage in self.stages:
            if isinstance(stage, LineFilter) and (err := stage.compile_error()):
                return f"parse error : stage '{stage}' : {err}"
        return None


@dataclass
class RangeAggregation:
    """count_over_time, rate, bytes_over_time, bytes_rate over `[range]`."""

    op: str
    query: LogQuery
    range_ns: int

    def value(self, lines: list[str]) -> float:
        seconds = self.range_ns / 1e9
        if self.op == "count_over_time":
            return float(len(lines))
        if self.op == "rate":
            return len(lines) / seconds
        total = float(sum(len(line.encode()) for line in lines))
        return total if self.op == "bytes_over_time" else total / seconds


@dataclass
class VectorAggregation:
    op: str  # sum, avg, min, max, count
    inner: "MetricQuery"
    by: list[str] | None  # None = over everything
    without: bool = False

    def group(self, labels: dict[str, str]) -> dict[str, str]:
        if self.by is None:
            return {}
        if self.without:
            return {k: v for k, v in labels.items() if k not in self.by}
        return {k: v for k, v in labels.items() if k in self.by}

    def combine(self, values: list[float]) -> float:
        if self.op == "sum":
            return float(sum(values))
        if self.op == "avg":
            return sum(values) / len(values)
        if self.op == "min":
            return min(values)
        if self.op == "max":
            return max(values)
        return float(len(values))


@dataclass
class VectorLit:
    value: float


@dataclass
class BinAdd:
    left: "MetricQuery"
    right: "MetricQuery"


MetricQuery = Union[RangeAggregation, VectorAggregation, VectorLit, BinAdd]


# -- parser -----------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, tokens: list[Token], anchored_errors: bool = True) -> None:
        self.toks = tokens
        self.pos = 0
        self.anchored_errors = anchored_errors  # 2.9.3 quotes a bad matcher regexp as anchored, `^(?:x)$`; 3.x as written

    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def peek(self, n: int = 1) -> Token:
        return self.toks[min(self.pos + n, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def fail(self, expecting: list[str] | None = None, unsupported: bool = False) -> LogQLError:
        """goyacc's message: it lists the expected tokens only when there are at most four."""
        t = self.tok
        msg = f"syntax error: unexpected {t.kind}"
        if expecting:
            msg += ", expecting " + " or ".join(expecting)
        if unsupported:
            msg += " (not supported by FakeLoki)"
        return _parse_error(msg, t.col)

    def expect(self, kind: str, expecting: list[str] | None = None) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expecting)
        return self.take()

    # -- grammar -------------------------------------------------------------
    def parse(self) -> LogQuery | MetricQuery:
        if self.tok.kind == "$end" and self.tok.col == 1:
            raise _parse_error("syntax error: unexpected $end")  # an empty query has no position
        if self.tok.kind == "{":
            expr: LogQuery | MetricQuery = self.log_query()
        else:
            expr = self.metric()
            while self.tok.kind == "+":
                self.take()
                expr = BinAdd(expr, self.metric())
        if self.tok.kind != "$end":
            raise self.fail(unsupported=self.tok.kind in ("-", "*", "/", "%", "^", "==", ">", "<", ">=", "<="))
        return expr

    def selector(self) -> list[Matcher]:
        self.expect("{")
        matchers: list[Matcher] = []
        if self.tok.kind == "}":
            self.take()
            return matchers
        while True:
            name = self.expect("IDENTIFIER", ["IDENTIFIER", "}"] if not matchers else ["IDENTIFIER"])
            if self.tok.kind not in ("=", "!=", "=~", "!~"):
                raise self.fail(["=", "=~", "!~", "!="])
            op = self.take().kind
            value = self.expect("STRING", ["STRING"]).value
            assert isinstance(value, str)
            if op in ("=~", "!~") and (err := go_regexp_error(f"^(?:{value})$")):
                raise _parse_error(err if self.anchored_errors else go_regexp_error(value) or err)
            matchers.append(Matcher(str(name.value), op, value))
            if self.tok.kind == ",":
                self.take()
                continue
            if self.tok.kind == "}":
                self.take()
                return matchers
            raise self.fail(["}", ","])

    def log_query(self) -> LogQuery:
        query = LogQuery(self.selector())
        while True:
            if self.tok.kind in ("|=", "|~", "!=", "!~"):
                op = self.take().kind
                if self.tok.kind == "IDENTIFIER" and self.tok.value == "ip":
                    raise self.fail(unsupported=True)
                value = self.expect("STRING", ["STRING", "ip"]).value
                assert isinstance(value, str)
                query.stages.append(LineFilter(op, value))
            elif self.tok.kind == "|":
                self.take()
                query.stages.append(self.stage())
            else:
                return query

    def stage(self) -> Stage:
        t = self.tok
        if t.kind != "IDENTIFIER":
            raise self.fail()
        word = str(t.value)
        nxt = self.peek()
        if word in ("json", "logfmt") and nxt.kind not in ("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="):
            self.take()
            if self.tok.kind in ("IDENTIFIER", "-"):  # extraction expressions, --strict, --keep-empty
                raise self.fail(unsupported=True)
            return JSONParser() if word == "json" else LogfmtParser()
        if word == "line_format" and nxt.kind == "STRING":
            self.take()
            template = self.take()
            return LineFormat(_line_format_parts(str(template.value), template.col))
        if word in _UNSUPPORTED_STAGES or word == "line_format":
            self.take()
            raise _parse_error(f"syntax error: stage {word} not supported by FakeLoki", t.col)
        return self.label_filters()

    def label_filters(self) -> LabelFilterExpr:
        groups: list[list[LabelFilter]] = [[self.label_filter()]]
        while True:
            if self.tok.kind == "," or (self.tok.kind == "IDENTIFIER" and self.tok.value == "and"):
                self.take()
                groups[-1].append(self.label_filter())
            elif self.tok.kind == "IDENTIFIER" and self.tok.value == "or":
                self.take()
                groups.append([self.label_filter()])
            elif self.tok.kind == "IDENTIFIER":
                groups[-1].append(self.label_filter())
            else:
                return LabelFilterExpr(groups)

    def label_filter(self) -> LabelFilter:
        name = self.expect("IDENTIFIER")
        op = self.tok.kind
        if op in ("=", "!=", "=~", "!~") and self.peek().kind == "STRING":
            self.take()
            value = self.take().value
            assert isinstance(value, str)
            if op in ("=~", "!~") and (err := go_regexp_error(f"^(?:{value})$")):
                raise _parse_error(err)
            return LabelFilter(str(name.value), op, value)
        if op in ("==", "!=", ">", ">=", "<", "<=", "=") and self.peek().kind == "NUMBER":
            self.take()
            if self.peek().kind in ("IDENTIFIER",) and re.fullmatch(r"[a-zA-Z]+", str(self.peek().value)) \
                    and self.peek().col == self.tok.col + len(self.tok.text):
                raise self.fail(unsupported=True)  # durations and bytes (5s, 1KB)
            value = self.take().value
            assert isinstance(value, float)
            return LabelFilter(str(name.value), op, value)
        raise self.fail()

    def metric(self) -> MetricQuery:
        t = self.tok
        if t.kind == "(":
            self.take()
            inner = self.metric()
            self.expect(")", [])
            return inner
        if t.kind.lower() in _LOG_RANGE_FUNCS:
            self.take()
            self.expect("(")
            query = self.log_query()
            rng = self.expect("RANGE", [])
            self.expect(")", [])
            assert isinstance(rng.value, int)
            return RangeAggregation(t.kind.lower(), query, rng.value)
        if t.kind.lower() in _SUPPORTED_AGGS:
            self.take()
            grouping = self.grouping()
            self.expect("(")
            inner = self.metric()
            self.expect(")", [])
            if grouping is None:
                grouping = self.grouping()
            by, without = grouping if grouping else (None, False)
            return VectorAggregation(t.kind.lower(), inner, by, without)
        if t.kind == "VECTOR":
            self.take()
            self.expect("(")
            num = self.expect("NUMBER")
            self.expect(")")
            assert isinstance(num.value, float)
            return VectorLit(num.value)
        if t.kind.lower() in _RANGE_FUNCS or t.kind.lower() in _AGG_FUNCS:
            raise self.fail(unsupported=True)
        raise self.fail()

    def grouping(self) -> tuple[list[str], bool] | None:
        if self.tok.kind not in ("by", "without"):
            return None
        without = self.take().kind == "without"
        self.expect("(")
        names: list[str] = []
        while self.tok.kind != ")":
            names.append(str(self.expect("IDENTIFIER").value))
            if self.tok.kind == ",":
                self.take()
        self.take()
        return names, without


def log_queries(expr: LogQuery | MetricQuery) -> list[LogQuery]:
    if isinstance(expr, LogQuery):
        return [expr]
    if isinstance(expr, RangeAggregation):
        return [expr.query]
    if isinstance(expr, VectorAggregation):
        return log_queries(expr.inner)
    if isinstance(expr, BinAdd):
        return log_queries(expr.left) + log_queries(expr.right)
    return []


def validate_matchers(matchers: list[Matcher]) -> None:
    """Loki's rule: at least one matcher must not match the empty string (`.*` counts as none)."""
    for m in matchers:
        if not m.matches({}):
            return
    raise _parse_error(EMPTY_MATCHER_MSG)


def parse(query: str, vector_supported: bool = True, v3: bool = False) -> LogQuery | MetricQuery:
    """Parse and validate a query as Loki's ParseExpr does (3.x's texts with v3); raises LogQLError with Loki's text."""
    if len(query) >= 5120:
        raise _parse_error(f"input size too long ({len(query)} > 5120)")
    expr = _Parser(_Lexer(query, vector_supported).tokens(), anchored_errors=not v3).parse()
    for q in log_queries(expr):
        validate_matchers(q.matchers)
    return expr


def runtime_error(expr: LogQuery | MetricQuery) -> str | None:
    """What the querier answers (500, as an rpc error) when it builds the pipeline, if it fails."""
    for q in log_queries(expr):
        if err := q.runtime_error():
            return f"rpc error: code = Unknown desc = {err}"
    return None


def parse_selector(query: str, v3: bool = False) -> LogQuery:
    """Parse a bare stream selector (series `match[]`, label values `query`)."""
    expr = parse(query, v3=v3)
    if not isinstance(expr, LogQuery) or expr.stages:
        raise LogQLError(f"only label matchers {'are' if v3 else 'is'} supported")
    return expr
