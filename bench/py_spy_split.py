"""Where a live process's time went, from py-spy's collapsed stacks (`--format raw`,
as `bench/http_load.py --py-spy` writes them): the share of samples by part of the
process, then the functions holding most samples (inclusive) whose name contains a
given text, then the leaf frames.

    uv run python bench/py_spy_split.py /tmp/kap-bench-http-XXXX/py-spy.txt record_vitals

SQLAlchemy runs statements in greenlets, and py-spy shows a greenlet's frames as a
stack of its own: the `SQLAlchemy in a greenlet` line is statement execution whose
caller (a handler, the echo, the relay) the sample does not name.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# (part, a frame text that marks it): the first that matches a stack names its part.
PARTS = (
    ("POST /sessions/{id}/vitals handler", "record_vitals (kap_monitoring/entrypoints/http.py"),
    ("GET /sessions/{id} handler", "get_session (kap_monitoring/entrypoints/http.py"),
    ("HTTP: middleware, FastAPI, responses", "run_asgi"),
    ("vitals consumer (the echo)", "vitals_batch.py"),
    ("outbox relay", "OutboxRelay"),
    ("aiokafka", "aiokafka"),
    ("faststream", "faststream"),
    ("uvicorn: parsing, connections", "uvicorn"),
    ("WAL checkpoints (worker thread)", "db_sqlite_checkpoint"),
    ("timers", "messaging/timers.py"),
    ("SQLAlchemy in a greenlet (caller not sampled)", "sqlalchemy"),
    ("SQLite statements in a greenlet (caller not sampled)", "kap_shared/db_sqlite"),
    ("elsewhere: the event loop itself, idle threads, no Python frame", ""),
)
LINE = re.compile(r":\d+\)")


def read(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if count.isdigit():
            stacks.append(([LINE.sub(")", f) for f in stack.split(";")], int(count)))
    return stacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", type=Path, help="py-spy record --format raw output")
    parser.add_argument("names", nargs="*", help="list the functions containing these")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    stacks = read(args.stacks)
    total = sum(count for _, count in stacks) or 1
    parts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in stacks:
        text = ";".join(frames)
        part = next(name for name, mark in PARTS if mark in text)  # the last mark is ""
        parts[part] += count
        for frame in set(frames):
            inclusive[frame] += count
        leaves[frames[-1] or "(no Python frame)"] += count

    def show(title: str, counts: Counter[str], chosen: list[tuple[str, int]]) -> None:
        print(f"== {title}")
        for name, count in chosen:
            print(f"{count / total * 100:6.1f} %  {name}")

    print(f"{total} samples")
    show("by part of the process", parts, parts.most_common())
    for name in args.names:
        found = [(f, c) for f, c in inclusive.most_common() if name in f]
        show(f"inclusive, frames containing {name!r}", inclusive, found[: args.top])
    show("leaf frames", leaves, leaves.most_common(args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
