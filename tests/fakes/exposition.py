"""The Prometheus text exposition (format 0.0.4) the fakes' /metrics pages write: one writer for every fake."""

from __future__ import annotations

from typing import Callable, Iterable

Number = Callable[[float], str]  # how a value is written: each fake's real server formats numbers its own way


def pairs(names: Iterable[str], values: Iterable[str]) -> str:
    """`a="1",b="2"`: a series' labels, in the order given (the real servers write them sorted by name)."""
    return ",".join(f'{k}="{v}"' for k, v in zip(names, values))


def family(name: str, help_text: str, kind: str, label_names: tuple[str, ...],
           series: dict[tuple[str, ...], float], number: Number) -> list[str]:
    """A counter's or gauge's lines, its series sorted by label values; none for a family without series."""
    if not series:
        return []
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{{{pairs(label_names, values)}}} {number(v)}" for values, v in sorted(series.items())]


def histogram(name: str, help_text: str, buckets: tuple[float, ...], series: dict[str, list[float]],
              number: Number) -> list[str]:
    """A classic histogram's lines, one series per label set (its `a="1",b="2"` text) in the order given."""
    if not series:
        return []
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for base, seen in series.items():
        for bound in buckets:
            lines.append(f'{name}_bucket{{{base},le="{number(bound)}"}} {sum(1 for s in seen if s <= bound)}')
        lines += [f'{name}_bucket{{{base},le="+Inf"}} {len(seen)}', f"{name}_sum{{{base}}} {number(sum(seen))}",
                  f"{name}_count{{{base}}} {len(seen)}"]
    return lines
