"""`python -m conformance.reports render|history|compare`: the report writer outside pytest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.reports import compare, history, write

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.reports")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="rewrite summary.md and index.html from junit.xml (no history line)")
    r.add_argument("--junit", type=Path, default=ROOT / "reports" / "junit.xml")
    h = sub.add_parser("history", help="print the last runs of history.jsonl as a table")
    h.add_argument("--history", type=Path, default=ROOT / "reports" / "history.jsonl")
    h.add_argument("--last", type=int, default=10)
    c = sub.add_parser("compare", help="side-by-side of two runs (before and after an upgrade)")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.command == "render":
        if not args.junit.is_file():
            print(f"no JUnit report at {args.junit}: run the suites first", file=sys.stderr)
            return 1
        write.render(args.junit)
        print(f"wrote {args.junit.parent / 'summary.md'} and {args.junit.parent / 'index.html'}")
        return 0
    if args.command == "history":
        sys.stdout.write(history.table(history.read(args.history), args.last))
        return 0
    text = compare.render_files(args.before, args.after)
    if args.out:
        args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
