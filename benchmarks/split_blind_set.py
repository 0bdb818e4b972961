"""Freeze a blind evaluation set and split it at random into a tuning and a locked half.

    python benchmarks/split_blind_set.py SET.jsonl --seed N --tuning OUT.jsonl --locked OUT.jsonl

Lines are ordered by id, shuffled with the seed, and halved (the tuning half gets the smaller
half of an odd count); each half keeps the set's order. Prints each file's sha256 and count,
for the set's README. Run once, when the author commits the set, before the engine sees it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path


def split(lines: list[str], seed: int) -> tuple[list[str], list[str]]:
    ids = [json.loads(line)["id"] for line in lines]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate ids in the set")
    order = sorted(range(len(lines)), key=lambda i: ids[i])
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return [lines[i] for i in sorted(order[:half])], [lines[i] for i in sorted(order[half:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", type=Path)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--tuning", type=Path, required=True)
    ap.add_argument("--locked", type=Path, required=True)
    args = ap.parse_args()
    lines = [line for line in args.set.read_text().splitlines() if line.strip()]
    tuning, locked = split(lines, args.seed)
    args.tuning.write_text("".join(line + "\n" for line in tuning))
    args.locked.write_text("".join(line + "\n" for line in locked))
    for path in (args.set, args.tuning, args.locked):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name} {digest} {sum(1 for _ in path.open())}")


if __name__ == "__main__":
    main()
