"""The topology picture: an inline SVG of both clusters with every hop coloured by its checks."""

from __future__ import annotations

from html import escape

from conformance.reports.hops import (Hop, checks_of, checks_of_hop, hops_for, latency_label, log_agent, log_store,
                                      primary_of, status)
from conformance.reports.model import Run
from conformance.reports.text import GLYPH

COLOUR = {"failed": "#c62828", "warning": "#ef8f00", "skipped": "#9e9e9e", "passed": "#2e7d32", "unchecked": "#bdbdbd"}
NODE_W, NODE_H = 150, 40
REMOTE_H = 330  # height of one remote cluster's box without part nodes
PRIMARY_NODES = {  # left column inside the primary's box: top-left corners
    "Promtail": (40, 60), "Loki": (260, 60), "Grafana": (40, 150), "Prometheus": (260, 150),
    "Envoy": (40, 240), "Kiali": (260, 300), "API server": (40, 330),
}
REMOTE_NODES = {"Promtail": (600, 60), "Prometheus": (600, 150), "Envoy": (760, 200), "API server": (600, 260)}
# The optional parts' nodes (Alertmanager, Pushgateway, ...), drawn only when one of the run's hops ends there:
# in rows of two under the cluster's own nodes, in the order the hops name them; the cluster's box grows to hold them.
PART_ROW = 70
PART_COLUMNS = {"primary": ((40, 260), 420), "remote": ((600, 760), 320)}  # (x of each column, y of the first row)


def render(run: Run) -> str:
    primary = primary_of(run)
    remotes = [c for c in run.clusters if c != primary]
    hops = hops_for(run, primary)
    extra = _part_nodes(hops, primary, remotes)
    rows = {c: -(-len(names) // 2) for c, names in extra.items()}
    remote_h = {r: REMOTE_H - 20 + rows[r] * PART_ROW for r in remotes}
    tops, y = {}, 20
    for r in remotes:
        tops[r], y = y, y + remote_h[r] + 20
    primary_h = 420 + (rows[primary] * PART_ROW + 20 if rows[primary] else 0)
    height = max(primary_h, y + 20)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 940 {height}" width="940" height="{height}" '
             f'role="img" aria-label="topology with every hop coloured by its checks">',
             _defs(),
             _cluster_box(20, 20, 420, height - 40, primary, "primary", _status_of(run, "platform", primary))]
    for remote in remotes:
        parts.append(_cluster_box(560, tops[remote], 360, remote_h[remote], remote, "remote",
                                  _status_of(run, "platform", remote)))
    # The log agent and store boxes are named for the stack profile's (Promtail, Alloy, Vector; Loki, OpenSearch).
    agent, store = log_agent(run), log_store(run)
    named = lambda n: {"Promtail": agent, "Loki": store}.get(n, n)  # noqa: E731
    nodes = {f"{primary} {named(n)}": xy for n, xy in PRIMARY_NODES.items() if has_node(run, primary, n)}
    for remote in remotes:
        nodes.update({f"{remote} {named(n)}": (x, y + tops[remote] - 20) for n, (x, y) in REMOTE_NODES.items()
                      if has_node(run, remote, n)})
    for cluster, names in extra.items():
        (columns, first), dy = PART_COLUMNS["primary" if cluster == primary else "remote"], tops.get(cluster, 20) - 20
        for k, name in enumerate(names):
            nodes[f"{cluster} {name}"] = (columns[k % 2], first + dy + (k // 2) * PART_ROW)
    lines, labels = [], []
    for hop in hops:
        checks = checks_of_hop(run, hop, hops)
        for source, target in _ends(hop, primary, agent, store):
            if source not in nodes or target not in nodes:
                continue  # an end this run has no way to see (the API server of a cluster reached by URLs only)
            line, label = _edge(hop, nodes[source], nodes[target], status(checks), latency_label(hop.area, checks))
            lines.append(line)
            labels.append(label)
    # Arrows under the nodes, their labels over everything: a short hop's label is wider than its gap.
    parts += [*lines, *(_node(name, xy) for name, xy in nodes.items()), *labels, "</svg>"]
    return "\n".join(parts)


def has_node(run: Run, cluster: str, node: str) -> bool:
    """Every cluster has its nodes, but a cluster the run reaches by URLs only (provider endpoints) has no API server."""
    provider = run.properties.get(f"cluster.{cluster}", "").split(", ")[1:2]  # "<role>, <provider>, how it is reached"
    return node != "API server" or provider != ["endpoints"]


def _part_nodes(hops: list[Hop], primary: str, remotes: list[str]) -> dict[str, list[str]]:
    """Per cluster, the nodes the hops end at that are not one of its own (an optional part's), in order."""
    own = {primary: PRIMARY_NODES, **{r: REMOTE_NODES for r in remotes}}
    extra: dict[str, list[str]] = {c: [] for c in own}
    for hop in hops:
        for end in (e for pair in _ends(hop, primary) for e in pair):
            cluster, name = end.split(" ", 1)
            if name not in own[cluster] and name not in extra[cluster]:
                extra[cluster].append(name)
    return extra


def _status_of(run: Run, area: str, cluster: str) -> str:
    return status(checks_of(run, area, cluster))


def _ends(hop: Hop, primary: str, agent: str = "Promtail", store: str = "Loki") -> list[tuple[str, str]]:
    """Node pairs an arrow joins for this hop (Grafana → datasources is two arrows where Grafana has Loki)."""
    c = hop.cluster
    if hop.area == "logs":
        return [(f"{c} {agent}", f"{primary} {store}")]
    if hop.area == "metrics":
        return [(f"{c} Prometheus", f"{primary} Prometheus")]
    if hop.area == "mesh":
        return [(f"{c} Envoy", f"{c} Prometheus")]
    if hop.area == "kiali":
        return [(f"{primary} Kiali", f"{c} API server")]
    if hop.area == "alerting":
        return [(f"{c} Prometheus", f"{primary} Alertmanager")]
    if hop.area == "app_metrics":  # scraped where it runs; a remote's series also reach the primary
        return [(f"{c} app", hop.target.removesuffix(" (remote_write)"))]
    if hop.area == "kube_bench":  # the remote's Prometheus → primary is the metrics hop's arrow
        return [(f"{c} kube-bench", f"{c} Pushgateway"), (f"{c} Pushgateway", f"{c} Prometheus")]
    if hop.area == "kube_state_metrics":  # scraped by the cluster's own Prometheus (a remote's then remote-writes)
        return [(f"{c} kube-state-metrics", f"{c} Prometheus")]
    if hop.area == "events":
        return [(f"{c} event exporter", f"{primary} Loki")]
    if hop.area == "configmap_dashboards":
        return [(f"{primary} ConfigMap", f"{primary} Grafana")]
    if hop.area == "tracing":  # the sidecars are the mesh's Envoy node; Kiali reads Jaeger
        return [(hop.source if hop.source.endswith(" Kiali") else f"{c} Envoy", f"{primary} Jaeger")]
    if store != "Loki":  # no Loki datasource: the profile's log search lives in its own UI (OpenSearch Dashboards)
        return [(f"{primary} Grafana", f"{primary} Prometheus")]
    return [(f"{primary} Grafana", f"{primary} Prometheus"), (f"{primary} Grafana", f"{primary} Loki")]


def _defs() -> str:
    markers = "".join(
        f'<marker id="arrow-{s}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>' for s, c in COLOUR.items())
    return f"<defs>{markers}</defs>"


def _cluster_box(x: int, y: int, w: int, h: int, name: str, role: str, platform: str) -> str:
    stroke = COLOUR[platform] if platform in ("failed", "warning") else "#607d8b"
    return (f'<g class="cluster" data-cluster="{escape(name)}" data-platform="{platform}">'
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="12" fill="#f5f7fa" stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + 14}" y="{y + 24}" font-size="15" font-weight="bold" fill="#263238">'
            f'{escape(name)} ({role}) · platform {GLYPH[platform]}</text></g>')


def _node(name: str, xy: tuple[int, int]) -> str:
    x, y = xy
    label = name.split(" ", 1)[1]
    return (f'<g class="node"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#ffffff" '
            f'stroke="#455a64"/><text x="{x + NODE_W / 2}" y="{y + 25}" font-size="13" text-anchor="middle" '
            f'fill="#263238">{escape(label)}</text></g>')


def _edge(hop: Hop, a: tuple[int, int], b: tuple[int, int], state: str, latency: str) -> tuple[str, str]:
    """The arrow (with its hover title) and its label, drawn separately."""
    (x1, y1), (x2, y2) = _anchor(a, b), _anchor(b, a)
    colour = COLOUR[state]
    dash = ' stroke-dasharray="6 4"' if state in ("unchecked", "skipped") else ""
    words = {"failed": "FAILED", "warning": "warning", "skipped": "not tested", "passed": "ok", "unchecked": "not checked"}
    label = words[state] + (f" · {latency}" if latency else "")
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 6
    line = (f'<g class="hop {state}" data-hop="{escape(hop.title)}" data-area="{hop.area}" '
            f'data-cluster="{escape(hop.cluster)}"><title>{escape(hop.title)}: {escape(label)}</title>'
            f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{colour}" stroke-width="3"{dash} '
            f'marker-end="url(#arrow-{state})"/></g>')
    text = (f'<text class="hop-label" x="{mx:.0f}" y="{my:.0f}" font-size="11" text-anchor="middle" fill="{colour}" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(label)}</text>')
    return line, text


def _anchor(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    """Where the line between two nodes leaves node a: the middle of the side facing b."""
    ax, ay = a[0] + NODE_W / 2, a[1] + NODE_H / 2
    bx, by = b[0] + NODE_W / 2, b[1] + NODE_H / 2
    if abs(bx - ax) * NODE_H >= abs(by - ay) * NODE_W:
        return (a[0] + NODE_W if bx > ax else a[0]), ay
    return ax, (a[1] + NODE_H if by > ay else a[1])
