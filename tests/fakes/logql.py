"""A small LogQL parser for FakeLoki: stream selectors, line filters and a few metric queries.

Errors read like Loki 2.9's (`parse error at line 1, col N: syntax error: unexpected X, expecting Y`).
Anything this subset does not implement is rejected with a parse error that says so,
so a query never succeeds silently with the wrong meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Loki's yacc token names: punctuation shows as its text, keywords and literals by name.
_PUNCT = ["|=", "|~", "!=", "!~", "=~", "==", "{", "}", "(", ")", "[", "]", ",", "=", "|", "+", "-", "*", "/"]
_RANGE_FUNCS = {
    "count_over_time", "rate", "rate_counter", "bytes_over_time", "bytes_rate", "avg_over_time",
    "sum_over_time", "min_over_time", "max_over_time", "stdvar_over_time", "stddev_over_time",
    "quantile_over_time", "first_over_time", "last_over_time", "absent_over_time",
}
_AGG_FUNCS = {"sum", "avg", "max", "min", "count", "stddev", "stdvar", "bottomk", "topk", "sort", "sort_desc"}
_SUPPORTED_FUNCS = {"count_over_time", "sum", "vector"}

EMPTY_MATCHER_MSG = (
    "queries require at least one regexp or equality matcher that does not have an empty-compatible value. "
    'For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)


class LogQLError(Exception):
    """A Loki ParseError; str() is the exact body Loki writes (status 400)."""


def _parse_error(msg: str, col: int = 0) -> LogQLError:
    if col == 0:
        return LogQLError(f"parse error : {msg}")
    return LogQLError(f"parse error at line 1, col {col}: {msg}")


@dataclass
class Token:
    kind: str  # yacc-style name: IDENTIFIER, STRING, NUMBER, RANGE, $end, a function name, or punctuation
    text: str
    col: int  # 1-based column of the token start
    value: object = None


@dataclass
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit


@dataclass
class LineFilter:
    op: str  # "|=", "!=", "|~", "!~"
    value: str

    def keeps(self, line: str) -> bool:
        if self.op in ("|=", "!="):
            hit = self.value in line
        else:
            hit = re.search(self.value, line) is not None
        return hit if self.op in ("|=", "|~") else not hit


@dataclass
class LogQuery:
    """`{matchers} |= "x" ...`: selects entries."""

    matchers: list[Matcher]
    filters: list[LineFilter] = field(default_factory=list)

    def selects(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def keeps(self, line: str) -> bool:
        return all(f.keeps(line) for f in self.filters)


@dataclass
class CountOverTime:
    query: LogQuery
    range_ns: int


@dataclass
class SumBy:
    inner: "MetricQuery"
    by: list[str] | None  # None = sum over everything
    without: bool = False


@dataclass
class VectorLit:
    value: float


@dataclass
class BinAdd:
    left: "MetricQuery"
    right: "MetricQuery"


MetricQuery = CountOverTime | SumBy | VectorLit | BinAdd


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
                dur = _duration_ns(text[i + 1 : end])
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


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def take(self) -> Token:
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def fail(self, expecting: list[str] | None = None, unsupported: bool = False) -> LogQLError:
        t = self.tok
        msg = f"syntax error: unexpected {t.kind}"
        if expecting:
            msg += ", expecting " + " or ".join(expecting)
        if unsupported:
            msg += " (not supported by FakeLoki)"
        return _parse_error(msg, t.col)

    def expect(self, kind: str, expecting: list[str] | None = None) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expecting or [kind])
        return self.take()

    # -- grammar -------------------------------------------------------------
    def parse(self) -> LogQuery | MetricQuery:
        if self.tok.kind == "{":
            expr: LogQuery | MetricQuery = self.log_query()
        else:
            expr = self.metric()
            while self.tok.kind == "+":
                self.take()
                expr = BinAdd(expr, self.metric())
        if self.tok.kind != "$end":
            raise self.fail(unsupported=self.tok.kind in ("|", "-", "*", "/", "=="))
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
            value = self.expect("STRING").value
            assert isinstance(value, str)
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise _parse_error(f"error parsing regexp: {exc}")
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
        while self.tok.kind in ("|=", "|~", "!=", "!~"):
            op = self.take().kind
            value = self.expect("STRING").value
            assert isinstance(value, str)
            if op in ("|~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise _parse_error(f"error parsing regexp: {exc}")
            query.filters.append(LineFilter(op, value))
        if self.tok.kind == "|":
            raise self.fail(unsupported=True)  # parsers, label filters, line_format...
        return query

    def metric(self) -> MetricQuery:
        t = self.tok
        if t.kind == "(":
            self.take()
            inner = self.metric()
            self.expect(")")
            return inner
        if t.kind == "COUNT_OVER_TIME":
            self.take()
            self.expect("(")
            query = self.log_query()
            rng = self.expect("RANGE")
            self.expect(")")
            assert isinstance(rng.value, int)
            return CountOverTime(query, rng.value)
        if t.kind == "SUM":
            self.take()
            grouping = self.grouping()
            self.expect("(")
            inner = self.metric()
            self.expect(")")
            if grouping is None:
                grouping = self.grouping()
            by, without = grouping if grouping else (None, False)
            return SumBy(inner, by, without)
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


def _matchers_of(expr: LogQuery | MetricQuery) -> list[list[Matcher]]:
    if isinstance(expr, LogQuery):
        return [expr.matchers]
    if isinstance(expr, CountOverTime):
        return [expr.query.matchers]
    if isinstance(expr, SumBy):
        return _matchers_of(expr.inner)
    if isinstance(expr, BinAdd):
        return _matchers_of(expr.left) + _matchers_of(expr.right)
    return []


def validate_matchers(matchers: list[Matcher]) -> None:
    """Loki's rule: at least one matcher must not match the empty string (`.*` counts as none)."""
    for m in matchers:
        if not m.matches({}):
            return
    raise _parse_error(EMPTY_MATCHER_MSG)


def parse(query: str, vector_supported: bool = True) -> LogQuery | MetricQuery:
    """Parse and validate a query as Loki's ParseExpr does; raises LogQLError with Loki's text."""
    if len(query) >= 5120:
        raise _parse_error(f"input size too long ({len(query)} > 5120)")
    expr = _Parser(_Lexer(query, vector_supported).tokens()).parse()
    for matchers in _matchers_of(expr):
        validate_matchers(matchers)
    return expr


def parse_selector(query: str) -> LogQuery:
    """Parse a bare stream selector (series `match[]`, label values `query`)."""
    expr = parse(query)
    if not isinstance(expr, LogQuery) or expr.filters:
        raise LogQLError("only label matchers is supported")
    return expr
