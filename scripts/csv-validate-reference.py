#!/usr/bin/env python3
"""The Repro LINE-import CSV checks written the plain way (csv + re), as a
baseline for scripts/bench-csv.sh. Same rules as `repro-line csv validate`:
BOM, UTF-8, header, field count, RFC 4180 quoting, LF/CRLF consistency,
line_user_id (error) / lowercase hex (warning), user_id length in characters
and control characters, empty fields, duplicates and conflicts, file size.
(Python's csv module accepts a stray quote inside an unquoted field, so that
one form of csv.quote goes unreported here; the work done is the same.)

  csv-validate-reference.py FILE     prints `rows errors warnings MB/s`, exit 0/1/2
"""
import csv
import os
import re
import sys
import time

MAX_BYTES = 500_000_000
LINE_ID = re.compile(r"U[0-9A-Za-z]{32}\Z", re.ASCII)
LOWER_HEX = re.compile(r"U[0-9a-f]{32}\Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\udc80-\udcff]")


def main(path):
    start = time.perf_counter()
    try:
        size = os.path.getsize(path)
        f = open(path, "r", encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as e:
        print("cannot read %s: %s" % (path, e), file=sys.stderr)
        return 2
    errors = warnings = rows = 0
    if size > MAX_BYTES:
        errors += 1
    endings = []  # ending of the last physical line handed to the csv reader

    def lines():
        for line in f:
            endings.append("\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else "")
            yield line

    src = lines()
    header = next(src, None)
    if header is None:
        print("0 1 0 0")
        return 1
    if header.startswith("\ufeff"):
        errors += 1
        header = header[1:]
    want_ending = endings[-1]
    header = header.rstrip("\r\n")
    if header == "line_user_id,user_id":
        fields = 2
    elif header == "line_user_id":
        fields = 1
    else:
        errors += 1
        fields = 2 if "," in header else 1
    seen = {}
    reader = csv.reader(src, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            errors += 1
            continue
        line = reader.line_num + 1
        if not row:
            errors += 1  # blank line
            continue
        rows += 1
        bad = False
        if len(row) != fields:
            errors += 1
            bad = True
        lid = row[0]
        if SURROGATE.search(lid):
            errors += 1
            bad = True
        elif lid == "":
            errors += 1
            bad = True
        elif not LINE_ID.match(lid):
            errors += 1
            bad = True
        elif not LOWER_HEX.match(lid):
            warnings += 1
        uid = ""
        if fields == 2 and len(row) >= 2:
            uid = row[1]
            if SURROGATE.search(uid):
                errors += 1
                bad = True
            elif uid == "":
                warnings += 1
            else:
                if len(uid) > 191:
                    errors += 1
                    bad = True
                if CONTROL.search(uid):
                    errors += 1
                    bad = True
        if endings[-1] and endings[-1] != want_ending:
            errors += 1
        if not bad:
            first = seen.get(lid)
            if first is None:
                seen[lid] = (uid, line)
            elif first[0] == uid:
                warnings += 1
            else:
                errors += 1
    elapsed = time.perf_counter() - start
    print("%d %d %d %.1f" % (rows, errors, warnings, size / 1e6 / elapsed))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
