"""`python -m tests.real build [NAME...]` downloads or builds (or finds in the cache) the real servers; `path NAME` prints one's path."""

from __future__ import annotations

import argparse
import sys

from tests.real import opensearch
from tests.real.build import Unavailable, cached_path, ensure, source_record
from tests.real.registry import REGISTRY

# Built with Maven rather than Go (tests/real/opensearch.py): named like the registered binaries.
JVM = {opensearch.NAME: opensearch}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.real", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="download or build what is not cached yet (default: every registered binary)")
    build.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join([*REGISTRY, *JVM])}")
    where = sub.add_parser("path", help="print the cached path of NAME (exit 1 when not built)")
    where.add_argument("name", choices=[*REGISTRY, *JVM])
    args = parser.parse_args(argv)
    if args.command == "path" and args.name in JVM:
        folder = JVM[args.name].cached_dir()
        print(folder)
        return 0 if (folder / "classpath").is_file() else 1
    if args.command == "path":
        p = cached_path(REGISTRY[args.name])
        print(p)
        return 0 if p.is_file() else 1
    unknown = [n for n in args.names if n not in REGISTRY and n not in JVM]
    if unknown:
        parser.error(f"unknown binary {', '.join(unknown)}; registered: {', '.join([*REGISTRY, *JVM])}")
    failed = False
    for name in args.names or [*REGISTRY, *JVM]:
        if name in JVM:
            try:
                print(f"{name}: {JVM[name].ensure(progress=lambda line: print(line, flush=True))} (built with Maven)")
            except Unavailable as e:
                print(f"error: {e}", file=sys.stderr)
                failed = True
            continue
        try:
            where = ensure(REGISTRY[name], progress=lambda line: print(line, flush=True))
            record = source_record(REGISTRY[name])
            how = record.read_text().strip() if record.is_file() else "placed by hand"
            print(f"{name}: {where} ({how})", flush=True)
        except Unavailable as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
