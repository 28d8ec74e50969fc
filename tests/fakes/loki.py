"""FakeLoki: Loki 2.9.3 single binary (auth_enabled: false) as the suite sees it over HTTP; or Loki 3.7.6.

Texts, status codes and discard reasons follow grafana/loki v2.9.3 (pkg/distributor, pkg/ingester/stream.go,
pkg/validation, pkg/loghttp, pkg/logql/syntax). Fault switches are plain attributes; see __init__.
With version="3.7.6" (the alloy profile's Loki chart 18.11.0 appVersion) it answers as grafana/loki v3.7.6
where the checks touch it:
- an instant query of a log selector is refused, 400 with logqlmodel.ErrUnsupportedSyntaxForInstantQuery's text
  (pkg/querier/http.go InstantQueryHandler; pkg/util/server/error.go maps it to 400) — refused since 3.2;
- a pushed stream without service_name gets one: the first of limits discover_service_name's labels it has,
  else "unknown_service" (pkg/loghttp/push/push.go), and service_name is not counted against
  max_label_names_per_series, whose default is 15, not 30 (pkg/validation/limits.go; distributor/validator.go);
- structured metadata (allow_structured_metadata defaults true) is accepted on push (JSON `[ts, line, {..}]`,
  protobuf EntryAdapter field 3) and returned merged into the stream's labels, as a query without the
  categorize-labels header gets it;
- every entry gets structured metadata detected_level (a level label, level metadata, a JSON or logfmt level
  field, else words of the line, else "unknown"; pkg/distributor/field_detection.go), so an answer without the
  categorize-labels header holds one stream per level; with it, streams keep their labels and each entry carries
  {structuredMetadata, parsed};
- 3.x's stats shape, error texts and push validation, /metrics label names, detected_labels / detected_fields /
  detected_field values / index volume / index stats, the tail's history with metadata and its refusal of a
  metric query: held to the recording of a real 3.7.6 (../shared/contracts/loki-3.7.6, tests/test_loki_contract.py);
- the defaults the checks meet and that did not change: max_query_length 721h, reject_old_samples true with
  168h (the chart's limits_config), loghttp defaultSince 1h, query_ingesters_within 3h.
Either way its flushed chunks and WAL sit where its paths put them (tests/fakes/loki_volume.py): flush(),
checkpoint() and replace_pod() (a pod replaced, killed or stopped) decide what a Loki on the same claim finds.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

import cramjam

from conformance.provision import logs as stack_logs
from tests.fakes import logql
from tests.fakes.loki_volume import Disks, Layout, Record, Volume
from tests.fakes.server import FakeServer, Request, Response, write_response

TENANT = "fake"  # Loki's tenant id when auth_enabled is false
NS = 1_000_000_000
HOUR_NS = 3600 * NS
MAX_AGE_NS = 168 * HOUR_NS  # reject_old_samples_max_age (loki chart 2.16.0 and Loki >= 2.4 default)
TOO_FAR_BEHIND_NS = HOUR_NS  # max_chunk_age (2h) / 2: the unordered-writes window
CREATION_GRACE_NS = 10 * 60 * NS  # creation_grace_period
INGESTION_RATE_BYTES = 4 * 1024 * 1024  # ingestion_rate_mb: 4
MAX_RETURNED_ERRORS = 10  # ingester.max-ignored-stream-errors default
MAX_QUERY_LENGTH_NS = (30 * 24 + 1) * HOUR_NS  # max_query_length default 30d1h (pkg/validation/limits.go)
INSTANT_LOOKBACK_NS = 30 * NS  # querier.engine.max-lookback-period: an instant log query looks back 30 s
# Loki 3.x (v3.7.6 pkg/logqlmodel/error.go ErrUnsupportedSyntaxForInstantQuery).
INSTANT_LOG_QUERY_REFUSED = ("log queries are not supported as an instant query type, please change your query to "
                             "a range query type")
SERVICE_NAME = "service_name"  # push.LabelServiceName
UNKNOWN_SERVICE = "unknown_service"  # push.ServiceUnknown
DISCOVER_SERVICE_NAME = ("service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
                         "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name")
ENCODING_FLAGS_HEADER = "X-Loki-Response-Encoding-Flags"  # httpreq.LokiEncodingFlagsHeader
CATEGORIZE_LABELS = "categorize-labels"
LEVEL_LABEL = "detected_level"  # constants.LevelLabel: structured metadata the 3.x distributor adds to every entry
LEVEL_FIELDS = ("level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText", "lvl",
                "LVL", "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT")  # field_detection.go defaultAllowedLevelFields
LEVEL_NAMES = {"trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info", "inf": "info",
               "information": "info", "warn": "warn", "wrn": "warn", "warning": "warn", "error": "error", "err": "error",
               "critical": "critical", "fatal": "fatal"}  # normalizeLogLevel, compared case-insensitively
MAX_STRUCTURED_METADATA_ENTRIES = 128
DETECTED_LIMIT = 1000  # the detected_fields / detected_field values default limit  # limits max_structured_metadata_entries_count
QUERY_INGESTERS_WITHIN_NS = 3 * HOUR_NS  # querier.query-ingesters-within: labels come from the ingester
TAIL_PATH = "/loki/api/v1/tail"
TAIL_MAX_DELAY_FOR = 5  # loghttp maxDelayForInTailing
TAIL_PING_SECONDS = 1.0  # querier wsPingPeriod
TAIL_MAX_ENTRIES = 100  # querier maxEntriesPerTailResponse
TAIL_POLL_SECONDS = 0.01  # how often the fake looks for new entries (the real one is pushed them by the ingester)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MALFORMED_STRING = "Value is string, but can't find closing '\"' symbol"  # jsonparser.MalformedStringError
MALFORMED_VALUE = "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol"
DEFAULT_QUERY_FAILURE = (
    'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
    'dial tcp 127.0.0.1:9095: connect: connection refused"'
)


# -- Go formatting helpers ---------------------------------------------------------
def go_rfc3339(ns: int) -> str:
    """time.Time.Format(time.RFC3339) in UTC (no fraction)."""
    return datetime.fromtimestamp(ns // NS, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_time_string(ns: int) -> str:
    """time.Time.String() in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC` with trailing zeros trimmed."""
    base = datetime.fromtimestamp(ns // NS, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    frac = f"{ns % NS:09d}".rstrip("0")
    return f"{base}{'.' + frac if frac else ''} +0000 UTC"


def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64) for the values Loki returns."""
    return str(int(value)) if value == int(value) else repr(value)


def prom_time(ns: int) -> float | int:
    """model.Time JSON: seconds with millisecond precision."""
    ms = ns // 1_000_000
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


labels_string = logql.labels_string  # labels.Labels.String(): `{a="1", b="2"}` sorted by name


def go_duration_string(ns: int) -> str:
    """time.Duration.String(): 744h0m0s, 1m30.5s, 250ms."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < NS:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    hours, rest = divmod(ns, HOUR_NS)
    minutes, rest = divmod(rest, 60 * NS)
    secs = f"{rest // NS}" + (f".{rest % NS:09d}".rstrip("0") if rest % NS else "")
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def go_duration(ns: int) -> str:
    """prometheus model.Duration String(): y and w only when exact, then d h m s ms (1w, 30d1h, 10m)."""
    ms = ns // 1_000_000
    if ms == 0:
        return "0s"
    out = ""
    day = 24 * 3600 * 1000
    for unit, size, exact in (("y", 365 * day, True), ("w", 7 * day, True), ("d", day, False),
                              ("h", 3600 * 1000, False), ("m", 60 * 1000, False), ("s", 1000, False), ("ms", 1, False)):
        if exact and ms % size:
            continue
        if ms // size:
            out += f"{ms // size}{unit}"
            ms -= ms // size * size
    return out


class PushError(Exception):
    """A push rejected before storage; `status` and `body` are what Loki answers."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


# -- Loki 3.x detected_level (pkg/distributor/field_detection.go) ------------------------------------
def detected_level(labels: dict[str, str], metadata: dict[str, str], line: str) -> str:
    """The level 3.x adds as structured metadata: a level label, else level metadata, else from the line."""
    for source in (labels, metadata):
        found = next((source[k] for k in LEVEL_FIELDS if k in source), None)
        if found is not None:
            return LEVEL_NAMES.get(found.lower(), found)
    return _level_from_line(line)


def _level_from_line(line: str) -> str:
    """extractLogLevelFromLogLine: a JSON object's level field, a logfmt level key, else words in the line."""
    stripped = line.strip()
    value = ""
    if stripped.startswith("{") and stripped.endswith("}"):
        value = _json_level(stripped)
    elif "=" in line:
        pairs = logql.logfmt_pairs(line)
        names = [f.lower() for f in LEVEL_FIELDS]  # keys compared case-insensitively (strings.EqualFold)
        ranked = [(names.index(k.lower()), v) for k, v in pairs if k.lower() in names]
        value = min(ranked)[1] if ranked else ""
    return LEVEL_NAMES.get(value.lower()) or _level_from_words(line)


def _json_level(text: str) -> str:
    """The first string field named like a level, depth first (getLevelUsingJSONParser)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return ""
    stack = [doc] if isinstance(doc, dict) else []
    while stack:
        for key, value in stack.pop(0).items():
            if isinstance(value, str) and key in LEVEL_FIELDS:
                return value
            if isinstance(value, dict):
                stack.insert(0, value)
    return ""


def _level_from_words(line: str) -> str:
    """detectLevelFromLogLine: the first level whose words the line contains, in Loki's order."""
    words = (("info", ("info", "INFO")), ("error", ("err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]")),
             ("warn", ("warn:", "WARN:", "[warn]", "[WARN]", "warning", "WARNING")),
             ("critical", ("critical:", "CRITICAL:", "[critical]", "[CRITICAL]")), ("debug", ("debug", "DEBUG")))
    return next((level for level, needles in words if any(n in line for n in needles)), "unknown")


# -- request decoding ------------------------------------------------------------
def _jsoniter_error(body: bytes, head: int, msg: str, raw: bool = False) -> str:
    """jsoniter's ReportError text, wrapped as PushRequest.Streams' decoders wrap it (unless raw)."""
    peek_start = max(head - 10, 0)
    parsing = body[peek_start : head + 10].decode(errors="replace")
    context = body[max(head - 50, 0) : head + 50].decode(errors="replace")
    prefix = "" if raw else "loghttp.PushRequest.Streams: []loghttp.LogProtoStream: unmarshalerDecoder: "
    return f"{prefix}{msg}, error found in #{head - peek_start} byte of ...|{parsing}|..., bigger context ...|{context}|..."


def _decode_json_push(body: bytes, strict_metadata: bool = False) -> list[tuple[str | None, dict[str, Any] | None, list[tuple[int, str]]]]:
    """(raw_labels_or_None, labels_map, entries) per stream; PushError(400) on what Loki's decoder rejects
    (with strict_metadata, as 3.x: a structured metadata value that is not a string)."""
    _check_push_object_start(body)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushError(400, f"loghttp.PushRequest.ReadObjectCB: {exc}")  # not a text Loki writes: see _check_push_object_start
    if not isinstance(doc, dict):
        raise PushError(400, "ReadObjectCB: expect { or n, but found " + json.dumps(doc)[:1])
    streams = doc.get("streams") or []
    if not isinstance(streams, list):
        raise PushError(400, "loghttp.PushRequest.Streams: []loghttp.LogProtoStream: decode slice: expect [ or n")
    out = []
    # Locate each stream object's end offset in the raw body to mimic jsoniter's error position.
    text = body.decode(errors="replace")
    cursor = text.find('"streams"')
    for stream in streams:
        start = text.find("{", text.find("{", cursor + 1) if cursor >= 0 else 0)
        head = _object_end(text, start) if start >= 0 else len(body)
        cursor = head
        if not isinstance(stream, dict):
            raise PushError(400, _jsoniter_error(body, head, "Value looks like object, but can't find closing '}' symbol"))
        labels = stream.get("stream") or {}
        if not isinstance(labels, dict) or any(not isinstance(v, str) for v in labels.values()):
            raise PushError(400, _jsoniter_error(body, head, MALFORMED_STRING))
        entries: list[tuple[int, str]] = []
        for value in stream.get("values") or []:
            if value is None:
                continue
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value[:2]):
                scalar = isinstance(value, list) and any(v is None or isinstance(v, (int, float, bool)) for v in value[:2])
                raise PushError(400, _jsoniter_error(body, head, MALFORMED_VALUE if scalar else MALFORMED_STRING))
            if not re.fullmatch(r"-?\d+", value[0]):
                raise PushError(400, _jsoniter_error(body, head, MALFORMED_VALUE))
            if not -(2**63) <= int(value[0]) < 2**63:
                raise PushError(400, _jsoniter_error(body, head, "Value is number, but overflowed while parsing"))
            meta = value[2] if len(value) > 2 and isinstance(value[2], dict) else {}
            if strict_metadata and any(not isinstance(v, str) for v in meta.values()):
                raise PushError(400, _jsoniter_error(body, head, MALFORMED_STRING))
            entries.append((int(value[0]), value[1], tuple(sorted((str(k), str(v)) for k, v in meta.items()))))
        out.append((None, labels, entries))
    return out


def _check_push_object_start(body: bytes) -> None:
    """jsoniter's errors for a body that is not an object of quoted field names (the struct decoder's prefix)."""
    i = 0
    while i < len(body) and body[i] in b" \t\r\n":
        i += 1
    if i < len(body) and body[i : i + 1] not in (b"{", b"n"):
        raise PushError(400, _jsoniter_error(body, i + 1, "loghttp.PushRequest.readObjectStart: expect { or n, but found "
                                             + body[i : i + 1].decode(errors="replace"), raw=True))
    if body[i : i + 1] != b"{":
        return
    i += 1
    while i < len(body) and body[i] in b" \t\r\n":
        i += 1
    if i < len(body) and body[i : i + 1] not in (b'"', b"}"):
        raise PushError(400, _jsoniter_error(body, i + 1, 'loghttp.PushRequest.readFieldHash: expect ", but found '
                                             + body[i : i + 1].decode(errors="replace"), raw=True))


def _object_end(text: str, start: int) -> int:
    """Offset just past the JSON object that starts at `start` (strings aware)."""
    depth, i, in_str = 0, start, False
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("unexpected EOF")
        b = buf[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def snappy_decode(buf: bytes) -> bytes:
    """Raw (block) snappy, as golang/snappy.Decode; ValueError('snappy: corrupt input') as Loki words any failure."""
    try:
        return bytes(cramjam.snappy.decompress_raw(buf))
    except cramjam.DecompressionError:
        raise ValueError("snappy: corrupt input")


def _proto_fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of one protobuf message."""
    fields, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ValueError(f"proto: illegal tag 0 (wire type {wire})")
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise ValueError("unexpected EOF")
            value, i = buf[i : i + size], i + size
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"proto: illegal wireType {wire}")
        fields.append((num, wire, value))
    return fields


def _decode_proto_push(body: bytes) -> list[tuple[str | None, dict[str, Any] | None, list[tuple[int, str]]]]:
    """logproto.PushRequest from a snappy body; PushError(400) with Loki's error text if it does not decode."""
    try:
        raw = snappy_decode(body)
        out = []
        for num, wire, value in _proto_fields(raw):
            if num != 1 or wire != 2:
                continue
            labels, entries = "", []
            for snum, swire, svalue in _proto_fields(value):
                if snum == 1 and swire == 2:
                    labels = svalue.decode()
                elif snum == 2 and swire == 2:
                    ts, line, meta = 0, "", []
                    for enum, ewire, evalue in _proto_fields(svalue):
                        if enum == 1 and ewire == 2:
                            secs = nanos = 0
                            for tnum, _, tvalue in _proto_fields(evalue):
                                if tnum == 1:
                                    secs = tvalue - (1 << 64) if tvalue >= 1 << 63 else tvalue
                                elif tnum == 2:
                                    nanos = tvalue
                            ts = secs * NS + nanos
                        elif enum == 2 and ewire == 2:
                            line = evalue.decode()
                        elif enum == 3 and ewire == 2:  # structuredMetadata: LabelPairAdapter{name=1, value=2}
                            pair = {n: v.decode() for n, w, v in _proto_fields(evalue) if w == 2}
                            meta.append((pair.get(1, ""), pair.get(2, "")))
                    entries.append((ts, line, tuple(sorted(meta))))
            out.append((labels, None, entries))
        return out
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushError(400, str(exc))


_LABEL_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')


def parse_labels(text: str) -> dict[str, str]:
    """promql ParseMetric for `{a="b", ...}`; ValueError with the parser's `1:N: parse error: ...` text."""
    if not text.startswith("{"):
        raise ValueError(f"1:1: parse error: unexpected character: {text[:1]!r}")
    labels: dict[str, str] = {}
    i = 1
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == "}" and text[i + 1 :].strip() == "":
            break
        m = _LABEL_PAIR.match(text, i)
        if not m:
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if j >= len(text):
                raise ValueError(f"1:{j + 1}: parse error: unexpected end of input inside braces")
            ch = text[j]
            raise ValueError(f"1:{j + 1}: parse error: unexpected character inside braces: '{ch}'")
        labels[m.group(1)] = json.loads(f'"{m.group(2)}"')
        i = m.end()
        if i < len(text) and text[i] == ",":
            i += 1
    return {k: v for k, v in labels.items() if v != ""}  # empty values are trimmed (loki PR #7355)


# -- storage -----------------------------------------------------------------------
@dataclass
class Entry:
    ts: int  # ns
    line: str
    visible_at: float  # time.time() after which queries see it
    metadata: tuple[tuple[str, str], ...] = ()  # structured metadata (Loki 3.x)
    flushed: bool = False  # in a chunk on the store; until then only in the ingester's memory and its WAL


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[Entry] = field(default_factory=list)
    highest_ts: int = 0
    last: tuple[int, str] | None = None


# Where each profile's Loki keeps its files: loki-stack's (loki 2.16.0 chart) and the Loki chart's (18.11.0, Loki 3.x).
LOKI_STACK_LAYOUT = Layout(stack_logs.OLD_MOUNT, stack_logs.OLD_CHUNKS_DIR, stack_logs.OLD_WAL_DIR,
                           ((stack_logs.OLD_PERIOD["from"], stack_logs.OLD_PERIOD["store"]),))
LOKI_CHART_LAYOUT = Layout(stack_logs.NEW_MOUNT, stack_logs.NEW_DEFAULT_CHUNKS_DIR, stack_logs.NEW_DEFAULT_WAL_DIR,
                           (("2024-04-01", "tsdb"),))  # stack/values/loki.yaml schemaConfig


def _record(key: tuple[tuple[str, str], ...], entry: Entry) -> Record:
    return key, entry.ts, entry.line, entry.metadata


class FakeLoki(FakeServer):
    """Loki 2.9.3 (or 2.6.1 for the health-query failure) on loopback."""

    def __init__(self, version: str = "2.9.3") -> None:
        super().__init__()
        self.version = version
        # Fault switches -------------------------------------------------------
        self.not_ready_for_seconds = 0.0  # /ready answers 503 "Ingester not ready: waiting for 15s..." (docs/troubleshooting.md#loki-not-ready)
        self.rate_limited = False  # pushes get 429 "Ingestion rate limit exceeded ..." (docs/troubleshooting.md#loki-answers-429-rate-limits)
        self.drop_pushes = False  # 204 but nothing stored: the ingester loses data (the symptom of docs/troubleshooting.md#running-but-shipping-nothing)
        self.visibility_delay_seconds = 0.0  # entries become queryable only after N s (slow ingestion path)
        self.query_failure: str | None = None  # queries answer 500 with this text (querier/ingester unreachable)
        self.tail_not_upgraded = False  # a proxy in front drops Upgrade/Connection: the tail handshake gets 400
        # State ----------------------------------------------------------------
        self._streams: dict[tuple[tuple[str, str], ...], Stream] = {}
        self._store_lock = threading.Lock()
        self.disks = Disks(Volume(), LOKI_CHART_LAYOUT if self.v3 else LOKI_STACK_LAYOUT)  # the pod's claim and paths
        self._started_at = time.time()
        self.discarded: dict[str, int] = {}  # reason -> loki_discarded_samples_total{tenant="fake"}
        self.lines_received: int | None = None  # loki_distributor_lines_received_total{tenant="fake"}; None: no child yet
        self.push_statuses: list[int] = []
        self.route("GET", r"/ready", self._ready)
        self.route("POST", r"/loki/api/v1/push", self._push)
        self.route("GET", r"/loki/api/v1/query_range", self._query_range)
        self.route("POST", r"/loki/api/v1/query_range", self._query_range)
        self.route("GET", r"/loki/api/v1/query", self._query)
        self.route("POST", r"/loki/api/v1/query", self._query)
        self.route("GET", r"/loki/api/v1/labels", self._labels)
        self.route("POST", r"/loki/api/v1/labels", self._labels)
        self.route("GET", r"/loki/api/v1/label/(?P<name>[^/]+)/values", self._label_values)
        self.route("POST", r"/loki/api/v1/label/(?P<name>[^/]+)/values", self._label_values)
        self.route("GET", r"/loki/api/v1/series", self._series)
        self.route("POST", r"/loki/api/v1/series", self._series)
        self.route("GET", r"/metrics", self._metrics)
        self.route("GET", r"/config", self._config)
        self.route("GET", r"/loki/api/v1/status/buildinfo", self._buildinfo)
        self.route("GET", TAIL_PATH, self._tail_without_upgrade)
        self._route_v3()
        self.tails_opened = 0

    def _route_v3(self) -> None:
        """The endpoints 3.x adds (Grafana's Logs Drilldown uses them); patterns 404 with the pattern ingester off.
        2.x answers each as an unknown path (the version may change on a running fake: the profile move)."""
        for path, handler in ((r"/loki/api/v1/detected_labels", self._detected_labels),
                              (r"/loki/api/v1/detected_fields", self._detected_fields),
                              (r"/loki/api/v1/detected_field/(?P<name>[^/]+)/values", self._detected_field_values),
                              (r"/loki/api/v1/index/volume", self._index_volume),
                              (r"/loki/api/v1/index/stats", self._index_stats),
                              (r"/loki/api/v1/patterns", lambda request: Response(404, b""))):
            self.route("GET", path, self._v3_only(handler))

    def _v3_only(self, handler: Any) -> Any:
        """handler on 3.x; on 2.x the answer to a path Loki does not know."""
        return lambda request: handler(request) if self.v3 else self.not_found(request)

    def answer(self, request: Request, handler: Any) -> Response | None:
        """A websocket GET of the tail path is served on its connection; everything else is routed."""
        upgrade = "websocket" in handler.headers.get("Upgrade", "").lower()
        if request.method == "GET" and request.path == TAIL_PATH and upgrade and not self.tail_not_upgraded:
            self._tail(request, handler)
            return None
        return super().answer(request, handler)

    @property
    def v3(self) -> bool:
        """Loki 3.x (the alloy profile's): instant log queries refused, service_name, structured metadata."""
        return int(self.version.split(".")[0]) >= 3

    @property
    def vector_supported(self) -> bool:
        """vector() arrived in Loki 2.7; 2.6.1 lexes it as an IDENTIFIER."""
        major, minor = (int(x) for x in self.version.split(".")[:2])
        return (major, minor) >= (2, 7)

    def now_ns(self) -> int:
        return time.time_ns()

    def dispatch(self, request: Request) -> Response:
        if request.method == "HEAD" and request.path != "/metrics":  # Loki's routes name their methods; HEAD is not one
            return Response(405, b"")
        response = super().dispatch(request)
        if response.status == 405:  # gorilla/mux answers a method mismatch with an empty 405
            return Response(405, b"")
        return response

    # -- helpers for tests -------------------------------------------------------
    def streams(self) -> list[dict[str, Any]]:
        """Every stored stream: {"stream": labels, "values": [[ns string, line], ...]} in push order."""
        with self._store_lock:
            return [
                {"stream": dict(s.labels), "values": [[str(e.ts), e.line] for e in s.entries]}
                for s in self._streams.values()
            ]

    def flush(self) -> int:
        """The ingester flushes what it holds into chunks, each indexed by its period's store (chunk idle or full,
        or a stop); how many entries."""
        layout = self.disks.layout
        with self._store_lock:
            records = [_record(key, e) for key, s in self._streams.items() for e in s.entries if not e.flushed]
            for s in self._streams.values():
                for e in s.entries:
                    e.flushed = True
            for record in records:
                self.disks.append(layout.index(layout.store_at(record[1])), [record])
        return len(records)

    def checkpoint(self) -> None:
        """The WAL's checkpoint (every checkpoint_duration, 5m): older segments deleted, it holds what memory holds,
        which flushed chunks leave after chunk_retain_period (pkg/ingester/checkpoint.go)."""
        with self._store_lock:
            held = [_record(key, e) for key, s in self._streams.items() for e in s.entries if not e.flushed]
            self.disks.replace(self.disks.layout.wal_dir, held)

    def replace_pod(self, version: str, layout: Layout, claim: Volume | None = None, killed: bool = False) -> None:
        """The pod behind the Service replaced: the old ingester stops (flushing on shutdown, unless killed), its
        memory is gone; the new Loki mounts `claim` (default: the same one), finds the chunks its periods' indexes
        point at and replays the WAL where `layout` says, an entry in both once (pkg/iter MergeEntryIterator)."""
        if not killed:
            self.flush()  # -ingester.flush-on-shutdown (loki-stack.yaml), wal.flush_on_shutdown (the Loki chart)
        disks = Disks(claim or self.disks.claim, layout)
        streams: dict[tuple[tuple[str, str], ...], Stream] = {}
        indexed = [r for store in {s for _, s in layout.periods} for r in disks.read(layout.index(store))
                   if layout.store_at(r[1]) == store]
        for records, flushed in ((indexed, True), (disks.read(layout.wal_dir), False)):
            for key, ts, line, meta in sorted(records, key=lambda r: r[1]):
                stream = streams.setdefault(key, Stream(dict(key)))
                if any(e.ts == ts and e.line == line for e in stream.entries):
                    continue
                stream.entries.append(Entry(ts, line, 0.0, meta, flushed))
                stream.highest_ts, stream.last = max(stream.highest_ts, ts), (ts, line)
        with self._store_lock:
            self._streams, self.disks, self.version = streams, disks, version

    def reset_ready_clock(self) -> None:
        """Restart the not-ready window from now."""
        self._started_at = time.time()

    def _discard(self, reason: str, count: int) -> None:
        if count:
            self.discarded[reason] = self.discarded.get(reason, 0) + count

    @staticmethod
    def _text_error(status: int, text: str, newline: bool = True) -> Response:
        """Go's http.Error (text/plain, trailing newline, nosniff); newline=False for the query frontend's
        own refusals (bad parameters, parse errors, limits), which it writes without one."""
        return Response(status, text + ("\n" if newline else ""), "text/plain; charset=utf-8",
                        {"X-Content-Type-Options": "nosniff"})

    # -- /ready ---------------------------------------------------------------------
    def _ready(self, request: Request) -> Response:
        if time.time() - self._started_at < self.not_ready_for_seconds:
            return self._text_error(503, "Ingester not ready: waiting for 15s after being ready")
        return self._text_error(200, "ready")

    # -- push -------------------------------------------------------------------------
    def _push(self, request: Request) -> Response:
        try:
            self._push_checked(request)
            status, body = 204, ""
        except PushError as exc:
            status, body = exc.status, exc.body
        self.push_statuses.append(status)
        return Response(204) if status == 204 else self._text_error(status, body)

    def _decode_body(self, request: Request) -> bytes:
        encoding = request.headers.get("Content-Encoding", "")
        body = request.body
        try:
            if encoding == "gzip":
                return gzip.decompress(body)
            if encoding == "deflate":
                return zlib.decompress(body, -15)
        except (OSError, zlib.error, EOFError) as exc:
            raise PushError(400, "gzip: invalid header" if encoding == "gzip" else f"flate: {exc}")
        if encoding not in ("", "snappy"):
            raise PushError(400, f'Content-Encoding "{encoding}" not supported')
        return body

    def _push_checked(self, request: Request) -> None:
        body = self._decode_body(request)
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not ctype:
            raise PushError(400, "mime: no media type")
        raw_streams = _decode_json_push(body, self.v3) if ctype == "application/json" else _decode_proto_push(body)
        if self.v3 and not raw_streams:  # 3.x distributor.Push: nothing to ingest is 422
            raise PushError(422, "error at least one valid stream is required for ingestion")
        for raw, label_map, _ in raw_streams:  # push.ParseRequest parses every stream's labels (retention), first
            key = raw if raw is not None else labels_string(label_map or {})
            try:
                parse_labels(key)
            except ValueError as exc:
                raise PushError(400, f"couldn't parse labels: {exc}")
        total = sum(len(entries) for _, _, entries in raw_streams)
        if total:
            self.lines_received = (self.lines_received or 0) + total  # counted as parsed, before validation
        if self.drop_pushes:
            return

        now = self.now_ns()
        errors: list[str] = []
        accepted: list[tuple[dict[str, str], list[tuple[int, str]]]] = []
        line_count = line_bytes = 0
        for raw, label_map, entries in raw_streams:
            if not entries:
                continue
            key = raw if raw is not None else labels_string(label_map or {})
            labels = self._discover_service_name(parse_labels(key))
            label_error = self._validate_labels(labels, 15 if self.v3 else 30)
            if label_error:  # ValidateLabels counts its own reason once, the distributor invalid_labels per entry
                reason, text = label_error
                errors.append(text)
                self._discard(reason, 1)
                self._discard("invalid_labels", len(entries))
                continue
            name = labels_string(labels)
            valid = []
            for ts, line, meta in entries:
                if meta and not self.v3:
                    meta = ()  # not Loki 2.9.3's: the stack's 2.9.3 never receives any (Promtail sends none)
                if ts < now - MAX_AGE_NS:
                    errors.append(f"entry for stream '{name}' has timestamp too old: {go_rfc3339(ts)}, "
                                  f"oldest acceptable timestamp is: {go_rfc3339(now - MAX_AGE_NS)}")
                    self._discard("greater_than_max_sample_age", 1)
                elif ts > now + CREATION_GRACE_NS:
                    errors.append(f"entry for stream '{name}' has timestamp too new: {go_rfc3339(ts)}")
                    self._discard("too_far_in_future", 1)
                elif self.v3 and len(meta) > MAX_STRUCTURED_METADATA_ENTRIES:
                    errors.append(f"stream '{name}' has too many structured metadata labels: '{len(meta)}', limit: "
                                  f"'{MAX_STRUCTURED_METADATA_ENTRIES}'. Please see "
                                  "`limits_config.max_structured_metadata_entries_count` or contact your Loki "
                                  "administrator to increase it")
                    self._discard("structured_metadata_too_many", 1)
                else:
                    valid.append((ts, line, self._with_level(labels, meta, line)))
                    line_count += 1
                    line_bytes += len(line.encode())
            accepted.append((labels, valid))

        validation_error = _grouped(errors) if errors else None
        if not accepted:
            if validation_error:
                raise PushError(400, validation_error)
            return
        if self.rate_limited and line_bytes > 0:  # a zero-byte request always passes the limiter
            self._discard("rate_limited", line_count)
            raise PushError(429, (  # 3.7.6 words it in lower case (alloy-1.18.1/README.md (b), Loki 3.7.6's answer)
                f"{'i' if self.v3 else 'I'}ngestion rate limit exceeded for user {TENANT} (limit: {INGESTION_RATE_BYTES} bytes/sec) while "
                f"attempting to ingest '{line_count}' lines totaling '{line_bytes}' bytes, reduce log volume or "
                "contact your Loki administrator to see if the limit can be increased"))
        ingester_error = None
        for labels, valid in accepted:
            ingester_error = self._ingest(labels, valid)  # like instance.Push, the last stream's result wins
        if ingester_error:
            raise PushError(400, ingester_error)
        if validation_error:
            raise PushError(400, validation_error)

    def _with_level(self, labels: dict[str, str], meta: tuple[tuple[str, str], ...],
                    line: str) -> tuple[tuple[str, str], ...]:
        """3.x: the entry's structured metadata with detected_level (a pushed one normalised), sorted by name."""
        if not self.v3:
            return meta
        found = dict(meta)
        level = found.get(LEVEL_LABEL)
        found[LEVEL_LABEL] = LEVEL_NAMES.get(level.lower(), level) if level else detected_level(labels, found, line)
        return tuple(sorted(found.items()))

    def _discover_service_name(self, labels: dict[str, str]) -> dict[str, str]:
        """Loki 3.x push.ParseRequest: a stream without service_name (even one without labels) gets the first
        discover_service_name label's value, else unknown_service."""
        if not self.v3 or SERVICE_NAME in labels:
            return labels
        found = next((labels[k] for k in DISCOVER_SERVICE_NAME if labels.get(k)), UNKNOWN_SERVICE)
        return {**labels, SERVICE_NAME: found}

    @staticmethod
    def _validate_labels(labels: dict[str, str], limit: int = 30) -> tuple[str, str] | None:
        """distributor Validator.ValidateLabels: (discard reason, error text) of the first problem."""
        name = labels_string(labels)
        if not labels:
            return "missing_labels", "error at least one label pair is required per stream"
        count = len(labels) - (1 if SERVICE_NAME in labels else 0)  # 3.x: service_name is Loki's own, not counted
        if count > limit:
            return "max_label_names_per_series", f"entry for stream '{name}' has {count} label names; limit {limit}"
        for k, v in sorted(labels.items()):
            if len(k) > 1024:
                return "label_name_too_long", f"stream '{name}' has label name too long: '{k}'"
            if len(v) > 2048:
                return "label_value_too_long", f"stream '{name}' has label value too long: '{v}'"
        return None

    def _ingest(self, labels: dict[str, str], entries: list[tuple[int, str, tuple]]) -> str | None:
        """The ingester's stream.Push: dedup, unordered-write window, then store."""
        key = tuple(sorted(labels.items()))
        visible_at = time.time() + self.visibility_delay_seconds
        failed: list[tuple[int, int]] = []  # (entry ts, cutoff)
        with self._store_lock:
            stream = self._streams.setdefault(key, Stream(dict(labels)))
            for ts, line, meta in entries:
                if stream.last == (ts, line):
                    continue
                cutoff = stream.highest_ts - TOO_FAR_BEHIND_NS
                if stream.highest_ts and ts < cutoff:
                    failed.append((ts, cutoff))
                    continue
                stream.entries.append(Entry(ts, line, visible_at, meta))
                stream.last = (ts, line)
                stream.highest_ts = max(stream.highest_ts, ts)
                self.disks.append(self.disks.layout.wal_dir, [_record(key, stream.entries[-1])])
        if not failed:
            return None
        self._discard("too_far_behind", len(failed))
        lines = "".join(
            f"entry with timestamp {go_time_string(ts)} ignored, reason: 'entry too far behind, "
            + (f"entry timestamp is: {go_rfc3339(ts)}, " if self.v3 else "")
            + f"oldest acceptable timestamp is: {go_rfc3339(cutoff)}',\n"
            for ts, cutoff in failed[:MAX_RETURNED_ERRORS]
        )
        return (f"{lines}user '{TENANT}', total ignored: {len(failed)} out of {len(entries)} "
                f"for stream: {labels_string(labels)}")

    # -- query parameters -----------------------------------------------------------
    def _bounds(self, request: Request) -> tuple[int, int]:
        now = self.now_ns()
        since = HOUR_NS
        if request.arg("since"):
            dur = logql._duration_ns(request.arg("since") or "")
            if dur is None:
                raise ValueError(f"could not parse 'since' parameter: not a valid duration string: \"{request.arg('since')}\"")
            since = dur
        end = _parse_ts(request.arg("end"), now, "end")
        start = _parse_ts(request.arg("start"), min(end, now) - since, "start")
        return start, end

    def _visible(self, matcher: logql.LogQuery | None, start: int, end: int) -> list[tuple[Stream, list[Entry]]]:
        now = time.time()
        out = []
        with self._store_lock:
            for stream in self._streams.values():
                if matcher is not None and not matcher.selects(stream.labels):
                    continue
                entries = [e for e in stream.entries if start <= e.ts < end and e.visible_at <= now]
                if entries:
                    out.append((stream, entries))
        return out

    def _held(self, matcher: logql.LogQuery | None, start: int, end: int) -> list[Stream]:
        """The streams a labels request sees: all the ingester holds (its index ignores the time range,
        pkg/ingester/instance.go Label), unless the range ends before the ingesters are asked at all."""
        if end < self.now_ns() - QUERY_INGESTERS_WITHIN_NS:
            return [s for s, _ in self._visible(matcher, start, end)]
        now = time.time()
        with self._store_lock:
            return [s for s in self._streams.values() if (matcher is None or matcher.selects(s.labels))
                    and any(e.visible_at <= now for e in s.entries)]

    # -- query_range / query ------------------------------------------------------------
    def _query_range(self, request: Request) -> Response:
        try:  # the query frontend's own checks: answered without a trailing newline
            start, end = self._bounds(request)
            if end < start:
                raise ValueError("end timestamp must not be before or equal to start time")
            limit = _parse_limit(request.arg("limit"))
            direction = _parse_direction(request.arg("direction"))
            step = _parse_step(request.arg("step"), start, end)
            if step <= 0:
                raise ValueError("zero or negative query resolution step widths are not accepted. Try a positive integer")
            if (end - start) // step > 11000:
                raise ValueError("exceeded maximum resolution of 11,000 points per time series. "
                                 "Try increasing the value of the step parameter")
            expr = logql.parse(request.arg("query") or "", self.vector_supported, self.v3)
            _check_entry_limit(expr, limit, self.v3)
            length = (end // 1_000_000 - start // 1_000_000) * 1_000_000  # the limits middleware works in ms
            if length > MAX_QUERY_LENGTH_NS:
                raise ValueError(f"the query time range exceeds the limit (query length: {go_duration_string(length)}, "
                                 f"limit: {go_duration(MAX_QUERY_LENGTH_NS)})")
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        if (failure := self._query_failure(expr)) is not None:
            return failure
        try:
            if isinstance(expr, logql.LogQuery) and self._categorized(request):
                return self._success("streams", self._select_categorized(expr, start, end, limit, direction),
                                     extra={"encodingFlags": [CATEGORIZE_LABELS]})
            if isinstance(expr, logql.LogQuery):
                return self._success("streams", self._select_logs(expr, start, end, limit, direction))
            series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
            for t in range(start, end + 1, step):
                for labels, value in self._eval(expr, t):
                    series.setdefault(tuple(sorted(labels.items())), []).append([prom_time(t), go_float(value)])
        except logql.PipelineError as exc:
            return self._text_error(400, str(exc), newline=not self.v3)  # 3.x: the text's own newline only
        result = [{"metric": dict(k), "values": v} for k, v in sorted(series.items())]
        return self._success("matrix", result, reads_logs=bool(logql.log_queries(expr)))

    def _query(self, request: Request) -> Response:
        try:
            limit = _parse_limit(request.arg("limit"))
            try:
                ts = _parse_ts(request.arg("time"), self.now_ns(), "time")
            except ValueError as exc:  # the instant query's time error is not prefixed with the parameter
                raise ValueError(str(exc).split(" parameter: ", 1)[-1])
            direction = _parse_direction(request.arg("direction"))
            expr = logql.parse(request.arg("query") or "", self.vector_supported, self.v3)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        if isinstance(expr, logql.LogQuery) and self.v3:  # refused by the query frontend, before any limit
            return self._text_error(400, INSTANT_LOG_QUERY_REFUSED, newline=False)
        try:
            _check_entry_limit(expr, limit, self.v3)  # checked by the querier for instant queries: with a newline
        except ValueError as exc:
            return self._text_error(400, str(exc))
        if (failure := self._query_failure(expr)) is not None:
            return failure
        if isinstance(expr, logql.LogQuery):
            # An instant log query looks back max_look_back_period (30 s): [time - 30 s, time).
            return self._success("streams", self._select_logs(expr, ts - INSTANT_LOOKBACK_NS, ts, limit, direction))
        try:
            values = self._eval(expr, ts)
        except logql.PipelineError as exc:
            return self._text_error(400, str(exc), newline=not self.v3)
        result = [{"metric": labels, "value": [prom_time(ts), go_float(v)]} for labels, v in values]
        return self._success("vector", sorted(result, key=lambda r: sorted(r["metric"].items())),
                             reads_logs=bool(logql.log_queries(expr)))

    def _query_failure(self, expr: logql.LogQuery | logql.MetricQuery) -> Response | None:
        """What the querier answers before any data: the fault switch, or a pipeline it cannot build (500)."""
        if self.query_failure is not None:
            return self._text_error(500, self.query_failure or DEFAULT_QUERY_FAILURE)
        if self.v3 and (error := next(filter(None, (q.runtime_error() for q in logql.log_queries(expr))), None)):
            return self._text_error(400, error, newline=False)  # 3.x: the query frontend builds the pipeline first
        if (error := logql.runtime_error(expr)) is not None:
            return self._text_error(500, error)
        return None

    def _processed(self, query: logql.LogQuery, start: int, end: int) -> list[tuple[int, str, dict[str, str]]]:
        """(ts, line, labels) of every entry in [start, end) that the query's pipeline keeps, in push order."""
        out = []
        for stream, entries in self._visible(query, start, end):
            for e in entries:
                # 3.x: structured metadata joins the labels a query sees (no categorize-labels header)
                kept = query.process(e.line, {**stream.labels, **dict(e.metadata)} if e.metadata else stream.labels)
                if kept is not None:
                    out.append((e.ts, kept[0], kept[1]))
        return out

    def _categorized(self, request: Request) -> bool:
        """3.x: the client asked for labels by category (X-Loki-Response-Encoding-Flags: categorize-labels)."""
        flags = next((v for k, v in request.headers.items() if k.lower() == ENCODING_FLAGS_HEADER.lower()), "")
        return self.v3 and CATEGORIZE_LABELS in [f.strip() for f in flags.split(",")]

    def _select_categorized(self, expr: logql.LogQuery, start: int, end: int, limit: int,
                            direction: str) -> list[dict]:
        """Streams keyed by their own labels; each entry's third element splits structuredMetadata from parsed."""
        picked = []
        for stream, entries in self._visible(expr, start, end):
            meta_of = {id(e): dict(e.metadata) for e in entries}
            for e in entries:
                kept = expr.process(e.line, {**stream.labels, **meta_of[id(e)]})
                if kept is not None:
                    picked.append((e.ts, kept[0], stream.labels, meta_of[id(e)], kept[1]))
        picked.sort(key=lambda p: p[0])
        if direction == "BACKWARD":
            picked.reverse()
        grouped: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        for ts, line, labels, meta, result in picked[:limit]:
            parsed = {k: v for k, v in result.items() if k not in labels and k not in meta}
            extra = {**({"structuredMetadata": meta} if meta else {}), **({"parsed": parsed} if parsed else {})}
            grouped.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line, extra])
        result = [{"stream": dict(k), "values": values} for k, values in grouped.items()]
        return sorted(result, key=lambda r: labels_string(r["stream"]))

    def _select_logs(self, expr: logql.LogQuery, start: int, end: int, limit: int, direction: str) -> list[dict]:
        picked = sorted(self._processed(expr, start, end), key=lambda p: p[0])  # stable: push order within a time
        if direction == "BACKWARD":
            picked.reverse()
        grouped: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for ts, line, labels in picked[:limit]:
            grouped.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line])
        result = [{"stream": dict(k), "values": values} for k, values in grouped.items()]
        return sorted(result, key=lambda r: labels_string(r["stream"]))

    def _eval(self, expr: logql.MetricQuery, t: int) -> list[tuple[dict[str, str], float]]:
        """Instant value of a metric expression at t (ns); series with no samples are absent."""
        if isinstance(expr, logql.VectorLit):
            return [({}, expr.value)]
        if isinstance(expr, logql.RangeAggregation):
            lines: dict[tuple[tuple[str, str], ...], list[str]] = {}
            for _, line, labels in self._processed(expr.query, t - expr.range_ns + 1, t + 1):  # (t - range, t]
                lines.setdefault(tuple(sorted(labels.items())), []).append(line)
            for key in sorted(lines):
                if logql.ERROR_LABEL in dict(key):
                    raise logql.PipelineError(dict(key))
            return [(dict(k), expr.value(v)) for k, v in lines.items()]
        if isinstance(expr, logql.VectorAggregation):
            groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
            for labels, value in self._eval(expr.inner, t):
                groups.setdefault(tuple(sorted(expr.group(labels).items())), []).append(value)
            return [(dict(k), expr.combine(v)) for k, v in groups.items()]
        assert isinstance(expr, logql.BinAdd)
        right = {tuple(sorted(lbl.items())): v for lbl, v in self._eval(expr.right, t)}
        return [(lbl, v + right[tuple(sorted(lbl.items()))]) for lbl, v in self._eval(expr.left, t)
                if tuple(sorted(lbl.items())) in right]

    def _success(self, result_type: str, result: list[dict], reads_logs: bool = True,
                 extra: dict[str, Any] | None = None) -> Response:
        """A query's answer with its stats (3.x's shape in 3.x mode; reads_logs: the ingester was asked)."""
        entries = sum(len(r.get("values", [])) for r in result) if result_type == "streams" else 0
        stats = _stats_v3(entries, reads_logs) if self.v3 else _stats_v2(entries)
        return Response(200, {"status": "success", "data": {"resultType": result_type, "result": result,
                                                            "stats": stats, **(extra or {})}})

    # -- Loki 3.x: detected labels and fields, index volume and stats -------------------------------------
    def _selector_and_bounds(self, request: Request) -> tuple[logql.LogQuery | None, int, int]:
        """The optional `query` (a selector, maybe with a pipeline) and the time range; ValueError/LogQLError."""
        start, end = self._bounds(request)
        raw = request.arg("query")
        expr = logql.parse(raw, self.vector_supported, True) if raw else None
        if expr is not None and not isinstance(expr, logql.LogQuery):
            raise ValueError("only log queries are supported")
        return expr, start, end

    def _detected_labels(self, request: Request) -> Response:
        """Each stream label's cardinality over the streams the ingester holds (its index ignores the range)."""
        try:
            expr, start, end = self._selector_and_bounds(request)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        values: dict[str, set[str]] = {}
        for stream in self._held(expr, start, end):
            for name, value in stream.labels.items():
                values.setdefault(name, set()).add(value)
        return Response(200, {"detectedLabels": [{"label": k, "cardinality": len(v)} for k, v in sorted(values.items())]})

    def _entry_fields(self, expr: logql.LogQuery | None, start: int,
                      end: int) -> list[tuple[dict[str, str], dict[str, tuple[str, str]]]]:
        """Per entry in range: its structured metadata and {field: (parser, value)} parsed from its line."""
        out = []
        for stream, entries in self._visible(expr, start, end):
            for e in entries:
                meta = dict(e.metadata)
                kept = expr.process(e.line, {**stream.labels, **meta}) if expr else (e.line, {})
                if kept is not None:
                    out.append((meta, _parsed_fields(kept[0])))
        return out

    def _detected_fields(self, request: Request) -> Response:
        """Fields parsed from the lines (json or logfmt) and structured metadata, with cardinality and type."""
        try:
            expr, start, end = self._selector_and_bounds(request)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        parsed: dict[str, tuple[set[str], set[str]]] = {}
        metadata: dict[str, set[str]] = {}
        for meta, fields in self._entry_fields(expr, start, end):
            for name, value in meta.items():
                metadata.setdefault(name, set()).add(value)
            for name, (parser, value) in fields.items():
                parsers, seen = parsed.setdefault(name, (set(), set()))
                parsers.add(parser)
                seen.add(value)
        found = [{"label": k, "type": _field_type(v), "cardinality": len(v), "parsers": None} for k, v in metadata.items()]
        found += [{"label": k, "type": _field_type(seen), "cardinality": len(seen), "parsers": sorted(parsers),
                   "jsonPath": [k]} for k, (parsers, seen) in parsed.items() if k not in metadata]
        return Response(200, {"fields": sorted(found, key=lambda f: f["label"]), "limit": DETECTED_LIMIT})

    def _detected_field_values(self, request: Request) -> Response:
        """The distinct values of one detected field (structured metadata or parsed from the lines)."""
        name = unquote(request.params["name"])
        try:
            expr, start, end = self._selector_and_bounds(request)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        values = {meta[name] if name in meta else fields[name][1]
                  for meta, fields in self._entry_fields(expr, start, end) if name in meta or name in fields}
        return Response(200, {"values": sorted(values), "limit": DETECTED_LIMIT})

    def _index_volume(self, request: Request) -> Response:
        """Bytes per series (or per targetLabels) of the streams selected in range, as the ingester sizes its chunks."""
        try:
            expr, start, end = self._selector_and_bounds(request)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        targets = [t for t in (request.arg("targetLabels") or "").split(",") if t]
        names = targets or sorted({m.name for m in (expr.matchers if expr else [])})
        volumes: dict[tuple[tuple[str, str], ...], int] = {}
        for stream, entries in self._visible(expr, start, end):
            key = tuple((n, stream.labels[n]) for n in names if n in stream.labels)
            if key:
                volumes[key] = volumes.get(key, 0) + _chunk_bytes(entries)
        result = [{"metric": dict(k), "value": [prom_time(end), str(v)]}
                  for k, v in sorted(volumes.items(), key=lambda kv: -kv[1])]
        return self._success("vector", result, reads_logs=False)

    def _index_stats(self, request: Request) -> Response:
        """Streams, chunks, bytes and entries the store's index lists: the fake never flushes a chunk, so none."""
        try:
            self._selector_and_bounds(request)
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        return Response(200, {"streams": 0, "chunks": 0, "bytes": 0, "entries": 0})

    # -- labels / series ----------------------------------------------------------------
    def _labels(self, request: Request) -> Response:
        try:
            start, end = self._bounds(request)
        except ValueError as exc:
            return self._text_error(400, str(exc), newline=False)
        names = sorted({k for s in self._held(None, start, end) for k in s.labels})
        return Response(200, _label_response(names))

    def _label_values(self, request: Request) -> Response:
        name = unquote(request.params["name"])
        try:
            start, end = self._bounds(request)
        except ValueError as exc:
            return self._text_error(400, str(exc), newline=False)
        try:  # the querier parses `query`: its errors end with a newline (not in 3.x)
            selector = logql.parse_selector(request.arg("query") or "", self.v3) if request.arg("query") else None
        except logql.LogQLError as exc:
            return self._text_error(400, str(exc), newline=not self.v3)
        values = sorted({s.labels[name] for s in self._held(selector, start, end) if name in s.labels})
        return Response(200, _label_response(values))

    def _series(self, request: Request) -> Response:
        groups = sorted(set(request.query.get("match[]", []) + request.query.get("match", [])))
        if len(groups) == 1 and groups[0].replace(" ", "") == "{}":
            groups = []  # 2.9 treats a single `{}` like no match[] at all: every series
        try:
            start, end = self._bounds(request)
            selectors = [logql.parse_selector(g, self.v3) for g in groups]
        except (ValueError, logql.LogQLError) as exc:
            return self._text_error(400, str(exc), newline=False)
        found = [dict(s.labels) for s, _ in self._visible(None, start, end)
                 if not selectors or any(sel.selects(s.labels) for sel in selectors)]
        return Response(200, {"status": "success", "data": sorted(found, key=labels_string)})

    # -- /loki/api/v1/tail (pkg/querier/http.go TailHandler, pkg/querier/tail.go) ---------------------
    def _tail_request(self, request: Request) -> tuple[logql.LogQuery | logql.MetricQuery, int, int, int]:
        """loghttp.ParseTailQuery: (query, limit, start ns, delay_for s); ValueError with Loki's text."""
        limit = _parse_limit(request.arg("limit"))
        start, _ = self._bounds(request)
        raw_delay = request.arg("delay_for") or "0"
        if not re.fullmatch(r"[+-]?\d+", raw_delay):
            raise ValueError(f'strconv.Atoi: parsing "{raw_delay}": invalid syntax')
        if int(raw_delay) > TAIL_MAX_DELAY_FOR:
            raise ValueError(f"delay_for can't be greater than {TAIL_MAX_DELAY_FOR}")
        try:
            expr = logql.parse(request.arg("query") or "", self.vector_supported, self.v3)
        except logql.LogQLError as exc:
            raise ValueError(str(exc))
        if not isinstance(expr, logql.LogQuery) and not self.v3:  # 3.x upgrades, then closes (see _tail)
            raise ValueError("tail: only log queries can be tailed")  # not Loki's text: the suite tails log queries
        return expr, limit, start, int(raw_delay)

    def _tail_without_upgrade(self, request: Request) -> Response:
        """A plain GET: the parameters are checked first, then gorilla's Upgrader fails the handshake."""
        try:
            self._tail_request(request)
        except ValueError as exc:
            return self._text_error(400, str(exc), newline=not self.v3)
        return Response(400, "Bad Request\n", "text/plain; charset=utf-8",
                        {"Sec-Websocket-Version": "13", "X-Content-Type-Options": "nosniff"})

    def _tail(self, request: Request, handler: Any) -> None:
        """Upgrade to a websocket, send the last `limit` entries since `start`, then each new one as it
        becomes queryable (after delay_for), a ping every second, until the client goes or the fake stops."""
        try:
            expr, limit, start, delay_for = self._tail_request(request)
        except ValueError as exc:
            write_response(handler, self._text_error(400, str(exc), newline=not self.v3))
            return
        key = handler.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        conn: socket.socket = handler.connection
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        handler.close_connection = True
        self.tails_opened += 1
        if not isinstance(expr, logql.LogQuery):  # 3.x: the querier refuses it after the upgrade
            conn.sendall(_ws_frame(0x8, struct.pack("!H", 1011) + b"only log selector is supported"))
            return
        gone = threading.Event()
        threading.Thread(target=_ws_drain, args=(handler.rfile, gone), name="loki-tail-reader", daemon=True).start()
        sent: set[int] = set()
        everything = sorted(self._tail_candidates(expr, start, sent, 0, history=True), key=lambda c: c[0])
        sent.update(id(e) for _, e, _, _ in everything)
        batch = everything[-limit:]  # the history: the newest `limit` entries, oldest first
        next_ping = time.monotonic() + TAIL_PING_SECONDS
        try:
            while not gone.is_set() and self._httpd is not None:
                if batch:
                    for i in range(0, len(batch), TAIL_MAX_ENTRIES):
                        streams = [{"stream": labels, "values": [[str(ts), line]]}
                                   for ts, _, line, labels in batch[i:i + TAIL_MAX_ENTRIES]]
                        conn.sendall(_ws_frame(0x1, json.dumps({"streams": streams}).encode()))
                if time.monotonic() >= next_ping:
                    conn.sendall(_ws_frame(0x9, b""))
                    next_ping += TAIL_PING_SECONDS
                gone.wait(TAIL_POLL_SECONDS)
                batch = sorted(self._tail_candidates(expr, start, sent, delay_for), key=lambda c: c[0])
                sent.update(id(e) for _, e, _, _ in batch)
        except OSError:
            pass  # the client went away

    def _tail_candidates(self, expr: logql.LogQuery, start: int, sent: set[int], delay_for: int,
                         history: bool = False) -> list[tuple[int, Entry, str, dict[str, str]]]:
        """Entries the tail has not sent that are queryable now (and older than delay_for), after the pipeline.
        The history (a query) carries structured metadata in the labels; live entries (the ingester's tailer) do not."""
        held_back = time.time_ns() - delay_for * NS
        out = []
        for stream, entries in self._visible(expr, start, 2**62):
            for e in entries:
                if id(e) in sent or e.ts > held_back:
                    continue
                kept = expr.process(e.line, {**stream.labels, **dict(e.metadata)} if history else stream.labels)
                if kept is not None:
                    out.append((e.ts, e, kept[0], kept[1]))
        return out

    def _buildinfo(self, request: Request) -> Response:
        return Response(200, {"version": self.version, "revision": "", "branch": "HEAD", "buildUser": "",
                              "buildDate": "", "goVersion": "go1.21.3"})

    # -- /metrics, /config ------------------------------------------------------------------
    def _metrics(self, request: Request) -> Response:
        """A family shows only once it has a child, as client_golang prints vectors."""
        lines = []
        if self.discarded:
            lines += [
                "# HELP loki_discarded_samples_total The total number of samples that were discarded.",
                "# TYPE loki_discarded_samples_total counter",
            ]
            extra = 'format="loki",policy="",' if self.v3 else ""  # 3.x adds format, policy, retention_hours
            hours = ',retention_hours=""' if self.v3 else ""
            lines += [f'loki_discarded_samples_total{{{extra}reason="{r}"{hours},tenant="{TENANT}"}} {n}'
                      for r, n in sorted(self.discarded.items())]
        if self.lines_received is not None:
            lines += [
                "# HELP loki_distributor_lines_received_total The total number of lines received per tenant",
                "# TYPE loki_distributor_lines_received_total counter",
                'loki_distributor_lines_received_total{'
                + ('format="loki",is_internal_stream="false",policy="",' if self.v3 else "")
                + f'tenant="{TENANT}"}} {self.lines_received}',
            ]
        lines += [
            "# HELP loki_build_info A metric with a constant '1' value labeled by version, revision, branch, "
            "goversion from which loki was built, and the goos and goarch for the build.",
            "# TYPE loki_build_info gauge",
            f'loki_build_info{{branch="HEAD",goarch="amd64",goos="linux",goversion="go1.21.3",'
            f'revision="fake",tags="netgo",version="{self.version}"}} 1',
        ]
        return Response(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4; charset=utf-8")

    def _config(self, request: Request) -> Response:
        text = (
            "auth_enabled: false\n"
            "ingester:\n"
            "  max_chunk_age: 2h\n"
            "limits_config:\n"
            "  ingestion_rate_strategy: local\n"
            f"  ingestion_rate_mb: {INGESTION_RATE_BYTES // (1024 * 1024)}\n"
            "  ingestion_burst_size_mb: 6\n"
            f"  max_label_names_per_series: {15 if self.v3 else 30}\n"
            "  reject_old_samples: true\n"
            f"  reject_old_samples_max_age: {go_duration(MAX_AGE_NS)}\n"
            f"  creation_grace_period: {go_duration(CREATION_GRACE_NS)}\n"
            "  max_entries_limit_per_query: 5000\n"
            "  per_stream_rate_limit: 3MB\n"
            "  per_stream_rate_limit_burst: 15MB\n"
            f"  max_query_length: {go_duration(MAX_QUERY_LENGTH_NS)}\n"
            "  split_queries_by_interval: 15m\n"
            + (f"  allow_structured_metadata: true\n  discover_service_name: [{', '.join(DISCOVER_SERVICE_NAME)}]\n"
               "  discover_log_levels: true\n  volume_enabled: true\n" if self.v3 else "")
            + "querier:\n"
            f"  query_ingesters_within: {go_duration_string(QUERY_INGESTERS_WITHIN_NS)}\n"
        )
        return Response(200, text, "text/plain; charset=utf-8")


def _parsed_fields(line: str) -> dict[str, tuple[str, str]]:
    """{field: (parser, value)}: a JSON object's fields (flattened as `| json` does), else logfmt's non-empty pairs."""
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        labels = logql.Labels({})
        if logql.JSONParser().process(line, labels) is not None and not labels.error:
            return {k: ("json", v) for k, v in labels.added.items() if v != ""}
    return {logql.sanitize_key(k): ("logfmt", v) for k, v in logql.logfmt_pairs(line) if v and logql.sanitize_key(k)}


def _field_type(values: set[str]) -> str:
    """The detected type of a field: int, float, boolean, duration, bytes, else string (all values must agree)."""
    checks = (("int", r"[+-]?\d+"), ("float", r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?"), ("boolean", r"(?i)true|false"),
              ("duration", r"([0-9.]+(ns|us|µs|ms|s|m|h))+"), ("bytes", r"[0-9.]+\s*[KMGTPE]?i?B"))
    return next((name for name, pattern in checks if values and all(re.fullmatch(pattern, v) for v in values)), "string")


def _chunk_bytes(entries: list[Entry]) -> int:
    """A head chunk's uncompressed size: lines, 8 bytes per structured metadata pair (two symbol references),
    and each distinct metadata name or value once (the chunk's symbol table)."""
    symbols = {text for e in entries for pair in e.metadata for text in pair}
    return sum(len(e.line.encode()) + 8 * len(e.metadata) for e in entries) + sum(len(t.encode()) for t in symbols)


def _chunk_stats(lines: int) -> dict[str, Any]:
    """stats.Chunk: what was read from head and stored chunks."""
    return {"headChunkBytes": 0, "headChunkLines": lines, "decompressedBytes": 0, "decompressedLines": 0,
            "compressedBytes": 0, "totalDuplicates": 0, "postFilterLines": lines, "headChunkStructuredMetadataBytes": 0,
            "decompressedStructuredMetadataBytes": 0}


def _store_stats(lines: int, v3: bool) -> dict[str, Any]:
    """stats.Store; 3.x adds the dataobj section and a few timings and flags."""
    store: dict[str, Any] = {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
                             "chunk": _chunk_stats(lines)}
    if v3:
        dataobj = ("prePredicateDecompressedRows", "prePredicateDecompressedBytes",
                   "prePredicateDecompressedStructuredMetadataBytes", "postPredicateRows", "postPredicateDecompressedBytes",
                   "postPredicateStructuredMetadataBytes", "postFilterRows", "pagesScanned", "pagesDownloaded",
                   "pagesDownloadedBytes", "pageBatches", "totalRowsAvailable", "totalPageDownloadTime")
        store.update({"chunkRefsFetchTime": 0, "congestionControlLatency": 0, "pipelineWrapperFilteredLines": 0,
                      "queryReferencedStructuredMetadata": False, "queryUsedV2Engine": False,
                      "dataobj": {k: 0 for k in dataobj}})
    return store


def _summary_stats(entries: int) -> dict[str, Any]:
    return {"bytesProcessedPerSecond": 0, "linesProcessedPerSecond": 0, "totalBytesProcessed": 0,
            "totalLinesProcessed": entries, "execTime": 0.001, "queueTime": 0.0, "subqueries": 0,
            "totalEntriesReturned": entries, "splits": 0, "shards": 0, "totalPostFilterLines": entries,
            "totalStructuredMetadataBytesProcessed": 0}


def _cache_stats(names: tuple[str, ...], v3: bool) -> dict[str, Any]:
    keys = ("entriesFound", "entriesRequested", "entriesStored", "bytesReceived", "bytesSent", "requests",
            "downloadTime") + (("queryLengthServed",) if v3 else ())
    return {name: {k: 0 for k in keys} for name in names}


def _stats_v2(entries: int) -> dict[str, Any]:
    """Loki 2.9.3's stats.Result."""
    return {"summary": _summary_stats(entries), "querier": {"store": _store_stats(0, False)},
            "ingester": {"totalReached": 1, "totalChunksMatched": 0, "totalBatches": 1, "totalLinesSent": entries,
                         "store": _store_stats(entries, False)},
            "cache": _cache_stats(("chunk", "index", "result", "statsResult"), False)}


def _stats_v3(entries: int, reads_logs: bool) -> dict[str, Any]:
    """Loki 3.x's stats.Result: an index section, more caches, querierExecTime; recvWaitTime once an ingester answered."""
    ingester: dict[str, Any] = {"totalReached": 1, "totalChunksMatched": 0, "totalBatches": 1, "totalLinesSent": entries,
                                "store": _store_stats(entries, True)}
    if reads_logs:
        ingester["recvWaitTime"] = 0
    return {"summary": _summary_stats(entries), "querier": {"querierExecTime": 0, "store": _store_stats(0, True)},
            "ingester": ingester,
            "index": {"totalChunks": 0, "postFilterChunks": 0, "shardsDuration": 0, "usedBloomFilters": False,
                      "bloomFilterTime": 0, "chunkRefsLookupTime": 0, "totalStreams": 0},
            "cache": _cache_stats(("chunk", "index", "result", "statsResult", "volumeResult", "seriesResult",
                                   "labelResult", "instantMetricResult"), True)}


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame (RFC 6455 section 5.2)."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    if len(payload) < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", len(payload)) + payload
    return head + bytes([127]) + struct.pack("!Q", len(payload)) + payload


def _ws_drain(rfile: Any, gone: threading.Event) -> None:
    """Read the client's (masked) frames until it sends a close frame or the connection ends."""
    try:
        while True:
            head = rfile.read(2)
            if len(head) < 2:
                break
            size = head[1] & 0x7F
            if size == 126:
                size = struct.unpack("!H", rfile.read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", rfile.read(8))[0]
            rfile.read((4 if head[1] & 0x80 else 0) + size)
            if head[0] & 0x0F == 0x8:
                break
    except (OSError, ValueError, struct.error):
        pass
    gone.set()


def _label_response(values: list[str]) -> dict[str, Any]:
    """logproto.LabelResponse as JSON: `data` is omitempty."""
    return {"status": "success", "data": values} if values else {"status": "success"}


def _grouped(errors: list[str]) -> str:
    """util.GroupedErrors.Error(): `N errors like: msg; ...` when more than one."""
    counts: dict[str, int] = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    if len(counts) == 1 and len(errors) == 1:
        return errors[0]
    return "; ".join(f"{n} errors like: {msg}" for msg, n in counts.items())


def _parse_ts(value: str | None, default: int, name: str) -> int:
    """loghttp.parseTimestamp: ns ints (<= 10 digits = seconds), float seconds, RFC3339Nano."""
    if not value:
        return default
    if "." in value:
        try:
            secs = float(value)
            whole = int(secs)
            frac = round((secs - whole) * 1000) / 1000
            return whole * NS + int(frac * NS)
        except ValueError:
            pass
    if re.fullmatch(r"[+-]?\d+", value):
        n = int(value)
        return n * NS if len(value) <= 10 else n
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError
        frac_match = re.search(r"\.(\d+)", value)
        frac_ns = int((frac_match.group(1) + "000000000")[:9]) if frac_match else 0
        return int(parsed.replace(microsecond=0).timestamp()) * NS + frac_ns
    except ValueError:
        raise ValueError(f"could not parse '{name}' parameter: strconv.ParseInt: parsing \"{value}\": invalid syntax")


def _check_entry_limit(expr: object, limit: int, v3: bool = False) -> None:
    """max_entries_limit_per_query (5000) applies to log queries only; 3.x names the limit in full."""
    if isinstance(expr, logql.LogQuery) and limit > 5000:
        name = "max_entries_limit_per_query" if v3 else "max_entries_limit"
        raise ValueError(f"max entries limit per query exceeded, limit > {name} ({limit} > 5000)")


def _parse_limit(value: str | None) -> int:
    if not value:
        return 100
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError(f'strconv.Atoi: parsing "{value}": invalid syntax')
    if int(value) <= 0:
        raise ValueError("limit must be a positive value")
    return int(value)


def _parse_direction(value: str | None) -> str:
    if not value:
        return "BACKWARD"
    if value.upper() not in ("FORWARD", "BACKWARD"):
        raise ValueError(f"invalid direction '{value}'")
    return value.upper()


def _parse_step(value: str | None, start: int, end: int) -> int:
    if not value:
        return max((end - start) // NS // 250, 1) * NS
    try:
        return int(float(value) * NS)
    except ValueError:
        dur = logql._duration_ns(value)
        if dur is None:
            raise ValueError(f'cannot parse "{value}" to a valid duration')
        return dur
