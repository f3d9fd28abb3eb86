#!/usr/bin/env python3
"""Generates Repro LINE import CSVs for tests and benchmarks, so nothing large is committed.

  csv-gen.py import OUT --size-mb 500 [--format 1|2] [--seed 1] [--errors 20] [--crlf]
      A valid import file of about the given size; with --errors, that many rows are
      replaced by seeded violations, and OUT.expected.csv lists `line,rule` for each.
  csv-gen.py users OUT --rows 10000000
      Format 1, the users with index 0..rows (IDs are a bijection of the index).
  csv-gen.py followers OUT --rows 8000000 --offset 2000000
      Format 2, the users with index offset..offset+rows, in a shuffled order
      (some may be beyond the users file: followers who are not in your user list).

IDs are `U` + 32 lowercase hex digits computed from the row index, so users and
followers files made separately still share IDs.
"""
import argparse
import random
import sys

MASK = (1 << 128) - 1
MUL = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd: i -> i*MUL mod 2^128 is a bijection
ADD = 0x2545F4914F6CDD1D2545F4914F6CDD1D


def line_id(i):
    return "U%032x" % ((i * MUL + ADD) & MASK)


def user_id(i):
    k = i % 3
    if k == 0:
        return str(i)
    if k == 1:
        return "user-%x" % i
    h = (i * 0xD6E8FEB86659FD93) & ((1 << 64) - 1)
    return "%08x-%04x-4%03x-a%03x-%012x" % (h >> 32, h & 0xFFFF, i & 0xFFF, (h >> 20) & 0xFFF, h & 0xFFFFFFFFFFFF)


# One seeded violation per kind, cycling; (rule, builder(line_index, row_index, eol) -> text)
def violations(fmt):
    uid = (lambda i: "," + user_id(i)) if fmt == 1 else (lambda i: "")
    kinds = [
        ("line_user_id.invalid", lambda i, eol: "U12345" + uid(i) + eol),
        ("line_user_id.not_lower_hex", lambda i, eol: line_id(i).upper() + uid(i) + eol),
        ("row.columns", lambda i, eol: line_id(i) + uid(i) + ",extra" + eol),
        ("line_user_id.empty", lambda i, eol: uid(i) + eol if fmt == 1 else '""' + eol),
        ("csv.quote", lambda i, eol: line_id(i) + (',ab"c' if fmt == 1 else '"') + eol),
        ("row.blank", lambda i, eol: eol),
        ("encoding.utf8", lambda i, eol: (line_id(i) + ",bad\udcff" if fmt == 1 else "U\udcff") + eol),
    ]
    if fmt == 1:
        kinds += [
            ("user_id.too_long", lambda i, eol: line_id(i) + "," + "x" * 192 + eol),
            ("user_id.control", lambda i, eol: line_id(i) + ',"a\tb"' + eol),
            ("user_id.empty", lambda i, eol: line_id(i) + "," + eol),
        ]
    return kinds


def write_import(a):
    rnd = random.Random(a.seed)
    eol = "\r\n" if a.crlf else "\n"
    other_eol = "\n" if a.crlf else "\r\n"
    target = int(a.size_mb * 1_000_000)
    header = ("line_user_id,user_id" if a.format == 1 else "line_user_id") + eol
    # Estimate the row count first so errors can be spread over the whole file.
    probe = [k * 997 + 13 for k in range(3000)]
    sample = sum(len(line_id(i)) + (1 + len(user_id(i)) if a.format == 1 else 0) + len(eol) for i in probe) / len(probe)
    rows = max(1, int((target - len(header)) / sample))
    kinds = violations(a.format)
    extra = [("line_ending.inconsistent", None), ("line_user_id.duplicate", None), ("line_user_id.conflict", None)]
    if a.format == 2:
        extra = extra[:2]
    plan = {}
    if a.errors:
        picks = sorted(rnd.sample(range(10, rows), min(a.errors, rows - 10)))
        all_kinds = [k[0] for k in kinds] + [e[0] for e in extra]
        for n, r in enumerate(picks):
            plan[r] = all_kinds[n % len(all_kinds)]
    builders = dict(kinds)
    expected = []
    written = len(header)
    with open(a.out, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(header)
        batch = []
        line = 2
        for i in range(rows):
            rule = plan.get(i)
            if rule is None:
                row = line_id(i) + ("," + user_id(i) if a.format == 1 else "") + eol
            elif rule == "line_ending.inconsistent":
                row = line_id(i) + ("," + user_id(i) if a.format == 1 else "") + other_eol
            elif rule == "line_user_id.duplicate":
                j = rnd.randrange(0, 10)  # rows 0..9 are never replaced
                row = line_id(j) + ("," + user_id(j) if a.format == 1 else "") + eol
            elif rule == "line_user_id.conflict":
                j = rnd.randrange(0, 10)
                row = line_id(j) + ",someone-else-%d" % i + eol
            else:
                row = builders[rule](i, eol)
            written += len(row)  # ASCII rows: characters are bytes (the one non-UTF-8 byte too)
            if written > target:
                break
            if rule is not None:
                expected.append((line, rule))
            batch.append(row)
            line += 1
            if len(batch) >= 100_000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))
    if a.errors:
        with open(a.out + ".expected.csv", "w") as f:
            f.write("line,rule\n")
            for at, rule in expected:
                f.write("%d,%s\n" % (at, rule))
    print("wrote %s: %d rows, %d seeded violations" % (a.out, line - 2, len(expected)), file=sys.stderr)


def write_ids(out, indices, fmt):
    with open(out, "w", newline="") as f:
        f.write("line_user_id,user_id\n" if fmt == 1 else "line_user_id\n")
        batch = []
        for i in indices:
            batch.append(line_id(i) + ("," + user_id(i) if fmt == 1 else "") + "\n")
            if len(batch) >= 100_000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import")
    imp.add_argument("out")
    imp.add_argument("--size-mb", type=float, required=True)
    imp.add_argument("--format", type=int, choices=[1, 2], default=1)
    imp.add_argument("--seed", type=int, default=1)
    imp.add_argument("--errors", type=int, default=0)
    imp.add_argument("--crlf", action="store_true")
    us = sub.add_parser("users")
    us.add_argument("out")
    us.add_argument("--rows", type=int, required=True)
    fo = sub.add_parser("followers")
    fo.add_argument("out")
    fo.add_argument("--rows", type=int, required=True)
    fo.add_argument("--offset", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "import":
        write_import(a)
    elif a.cmd == "users":
        write_ids(a.out, range(a.rows), 1)
    else:
        n = a.rows
        # A fixed permutation of 0..n (affine map with a multiplier coprime to n), offset.
        m = 2654435761
        while gcd(m, n) != 1:
            m += 2
        write_ids(a.out, ((k * m) % n + a.offset for k in range(n)), 2)


def gcd(x, y):
    while y:
        x, y = y, x % y
    return x


if __name__ == "__main__":
    main()
