"""Two readers compared picture by picture on the same pictures of benchmarks/reading_accuracy.py, per category.

    .venv/bin/python benchmarks/reading_accuracy.py --model A --validation --seed 1 --readings a.json
    .venv/bin/python benchmarks/reading_accuracy.py --model B --validation --seed 1 --readings b.json
    .venv/bin/python benchmarks/paired.py a.json b.json

Two readings of one category differ by the pictures only one of them reads: a difference of 2 points on 300
pictures is 6 pictures, and whether that is a change or chance depends on how many pictures changed hands both
ways. So each row gives both counts and the exact two-sided sign test on them (McNemar's exact test): the
chance of a split at least that uneven if either reader were as likely to win each changed picture.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# The settings that decide which pictures a run drew: two runs are comparable only where these agree.
DRAW_SETTINGS = ("count", "seed", "validation")


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value of ``only_a`` against ``only_b`` wins, each side equally likely (1.0 for none)."""
    changed = only_a + only_b
    tail = sum(math.comb(changed, wins) for wins in range(min(only_a, only_b) + 1)) / 2**changed
    return min(1.0, 2 * tail)


def load(path: str) -> dict:
    try:
        drawn = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"paired.py: cannot read {path}: {error}") from None
    if "readings" not in drawn:
        raise SystemExit(f"paired.py: {path} has no readings (write them with reading_accuracy.py --readings)")
    return drawn


def compare(a: dict, b: dict) -> list[dict]:
    """Per category both runs read: pictures, each one's exact share, and the pictures only one of them read."""
    differing = [name for name in DRAW_SETTINGS if a.get(name) != b.get(name)]
    if differing:
        raise SystemExit(f"paired.py: the runs drew different pictures ({', '.join(differing)} differ)")
    rows = []
    for kind in [kind for kind in a["readings"] if kind in b["readings"]]:
        first, second = a["readings"][kind], b["readings"][kind]
        if [picture["text"] for picture in first] != [picture["text"] for picture in second]:
            raise SystemExit(f"paired.py: the runs' {kind} pictures differ (made by different code?)")
        right_a = [picture["read"] == picture["text"] for picture in first]
        right_b = [picture["read"] == picture["text"] for picture in second]
        only_a = sum(x and not y for x, y in zip(right_a, right_b))
        only_b = sum(y and not x for x, y in zip(right_a, right_b))
        rows.append(
            {
                "kind": kind,
                "pictures": len(first),
                "a": sum(right_a) / len(first),
                "b": sum(right_b) / len(first),
                "only_a": only_a,
                "only_b": only_b,
                "p": sign_test(only_a, only_b),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="readings of the first run (reading_accuracy.py --readings)")
    parser.add_argument("b", help="readings of the second run, of the same pictures")
    args = parser.parse_args(argv)
    a, b = load(args.a), load(args.b)
    rows = compare(a, b)
    if not rows:
        raise SystemExit("paired.py: the runs share no category")
    print(f"# A: {a['model']}\n# B: {b['model']}")
    print(f"# {a['count']} pictures per category, seed {a['seed']}" + (", validation" if a["validation"] else ""))
    print("| category | pictures | A | B | B - A | only A read | only B read | sign test p |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        points = (row["b"] - row["a"]) * 100
        print(
            f"| {row['kind']} | {row['pictures']} | {row['a']:.1%} | {row['b']:.1%} | {points:+.1f} "
            f"| {row['only_a']} | {row['only_b']} | {row['p']:.3f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
