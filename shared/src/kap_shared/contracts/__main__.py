"""`python -m kap_shared.contracts`: check, release, examples, asyncapi.

  check     compare every topic's current schema with contracts/<topic>.schema.json;
            exit 1 when a change breaks consumers (a new topic version is needed)
  release   write the current schemas to contracts/ (refuses breaking changes
            unless --force)
  examples  write contracts/examples/<EventType>.json from the shared test examples
            (--check: exit 1 when the committed files are stale)
  asyncapi  write docs/asyncapi/<service>.json from each service's bootstrap
            (--check: exit 1 when the committed files are stale)
  doc       write docs/contract.md (topics, envelope, event fields, HTTP paths,
            rule defaults) from the event models and each service's bootstrap
            (--check: exit 1 when the committed file is stale)

Paths default to the repository root found above the working directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import asyncapi, document, examples
from .compat import compare_all
from .schemas import current_schemas, load_released, write_released


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def repository_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` holding uv.lock (the workspace root)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "uv.lock").exists():
            return candidate
    return here


def _check(contracts_dir: Path) -> int:
    report = compare_all(load_released(contracts_dir), current_schemas())
    _out(report.render())
    return 1 if report.breaking else 0


def _release(contracts_dir: Path, *, force: bool) -> int:
    current = current_schemas()
    report = compare_all(load_released(contracts_dir), current)
    if report.breaking and not force:
        _out(report.render())
        _out("release refused: breaking changes need a new topic version (or --force)")
        return 1
    for stale in sorted(set(load_released(contracts_dir)) - set(current)):
        (contracts_dir / f"{stale}.schema.json").unlink()
        _out(f"removed {stale}.schema.json")
    for path in write_released(contracts_dir, current):
        _out(f"released {path}")
    return 0


def _examples(contracts_dir: Path, source: Path, *, check: bool) -> int:
    wanted = examples.canonical_all(examples.load_source(source))
    directory = contracts_dir / "examples"
    if check:
        if examples.load(directory) != wanted:
            _err(f"{directory} is stale: run `uv run python -m kap_shared.contracts examples`")
            return 1
        _out(f"{directory}: {len(wanted)} examples up to date")
        return 0
    for path in examples.write(directory, wanted):
        _out(f"wrote {path}")
    return 0


def _asyncapi(out_dir: Path, *, check: bool) -> int:
    if check:
        out_of_date = asyncapi.stale(out_dir)
        if out_of_date:
            _err(
                f"AsyncAPI documents out of date for {', '.join(out_of_date)}: "
                f"run `{asyncapi.REGENERATE}`"
            )
            return 1
        _out(f"{out_dir}: AsyncAPI documents up to date")
        return 0
    for path in asyncapi.write_all(out_dir):
        _out(f"wrote {path}")
    return 0


def _doc(root: Path, *, check: bool) -> int:
    if check:
        if document.stale(root):
            _err(f"{document.path(root)} is out of date: run `{document.REGENERATE}`")
            return 1
        _out(f"{document.path(root)}: up to date")
        return 0
    _out(f"wrote {document.write(root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kap_shared.contracts", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="compare current schemas with the released ones")
    release = commands.add_parser("release", help="write the current schemas to contracts/")
    release.add_argument("--force", action="store_true", help="release even breaking changes")
    example = commands.add_parser("examples", help="write contracts/examples/*.json")
    example.add_argument("--source", type=Path, default=None)
    example.add_argument("--check", action="store_true")
    spec = commands.add_parser("asyncapi", help="write docs/asyncapi/<service>.json")
    spec.add_argument("--check", action="store_true")
    doc = commands.add_parser("doc", help="write docs/contract.md")
    doc.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    root = args.root.resolve() if args.root else repository_root()
    contracts_dir = root / "contracts"
    if args.command == "check":
        return _check(contracts_dir)
    if args.command == "release":
        return _release(contracts_dir, force=args.force)
    if args.command == "examples":
        source = args.source or root / "shared" / "tests" / "examples.py"
        return _examples(contracts_dir, source, check=args.check)
    if args.command == "doc":
        return _doc(root, check=args.check)
    return _asyncapi(root / "docs" / "asyncapi", check=args.check)


if __name__ == "__main__":
    sys.exit(main())
