#!/usr/bin/env python3
"""Writes a JSON-lines file for `paygate accounts import FILE`: N Class II accounts, each its own
customer (owner_id), resident ID card and bound card, all of them valid, so every line opens.

- Resident ID numbers (GB 11643-1999, as src/account/identity.rs checks them): a region code,
  a birth date from 1950 to 1999 (a real date), a 3-digit sequence and the ISO 7064 MOD 11-2
  check character. Distinct lines get distinct numbers (the line number picks the region code,
  date and sequence), so no person reaches the per-person Class II limit.
- Bound card numbers: 19 digits, prefix 622202, the line number, a Luhn check digit.
- Request ids `imp-<seed>-<n>`: a second run of the same file opens nothing twice.

Python rather than a `paygate` subcommand: it is a test-data tool, not something an operator
runs, and it needs no rebuild of the gateway to change the shape of the data.

    python3 benches/import_lines.py 1000000 > /tmp/accounts.jsonl
"""

import argparse
import json
import sys

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
REGIONS = ("110105", "310115", "440304", "510108", "320583", "330106", "420102", "610113")
DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
YEARS = range(1950, 2000)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
SEQUENCES = 1000


def resident_id(n: int) -> str:
    """A valid 18-character resident ID number, distinct for each n below the capacity."""
    n, seq = divmod(n, SEQUENCES)
    n, day_index = divmod(n, 365)
    n, year_index = divmod(n, len(YEARS))
    region = REGIONS[n % len(REGIONS)]
    if n >= len(REGIONS):
        raise SystemExit("more lines than distinct resident ID numbers")
    month = 0
    while day_index >= DAYS_IN_MONTH[month]:
        day_index -= DAYS_IN_MONTH[month]
        month += 1
    body = f"{region}{YEARS[year_index]}{month + 1:02d}{day_index + 1:02d}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(body, WEIGHTS))
    return body + CHECK_CHARS[total % 11]


def luhn_digit(body: str) -> str:
    """The Luhn check digit to append to `body`."""
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return str((10 - total % 10) % 10)


def card_number(n: int) -> str:
    body = f"622202{n:012d}"
    return body + luhn_digit(body)


def line(seed: str, n: int) -> str:
    return json.dumps(
        {
            "request_id": f"imp-{seed}-{n}",
            "kind": "CLASS_II",
            "currency": "CNY",
            "owner_id": f"cust-{seed}-{n}",
            "identity": {
                "full_name": SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)],
                "document_type": "RESIDENT_ID_CARD",
                "document_number": resident_id(n),
            },
            "bound_card_number": card_number(n),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", type=int, help="how many lines (accounts)")
    parser.add_argument("--seed", default="a", help="part of every request id and owner id")
    parser.add_argument("--first", type=int, default=0, help="number of the first line")
    args = parser.parse_args()
    out = sys.stdout
    for n in range(args.first, args.first + args.lines):
        out.write(line(args.seed, n))
        out.write("\n")


if __name__ == "__main__":
    main()
