#!/usr/bin/env python3
"""Reorders the functions of a wasm module so that gzip compresses it better.

gzip finds repeats only within a 32 KiB window, and the linker's function order puts similar
small functions (drop glue, Vec instantiations, thin wrappers) far apart. This script changes
only the order of the function definitions: the code is the same, calls are renumbered by
binaryen. It works on binaryen's text format, where functions are referred to by name, so
reordering the definitions is all it takes:

1. wasm-dis the module; split its top-level fields (binaryen prints one per line at indent 1);
2. start from the functions sorted by the length of their text (similar sizes are often similar code);
3. a seeded local search moves one function a few places at a time and keeps a move when zlib -9
   of the module's bytes gets smaller (deterministic for the same input, binaryen and zlib; the
   sizes are estimates, as calls are renumbered only when the module is assembled). A move changes
   nothing before it, so the compressor's state at each function boundary is kept and a trial
   compresses only from the move on;
4. steps 3 runs from the same start with several seeds (the search is noisy: ±40 B between
   seeds); each result is assembled and the one `gzip -9` makes smallest is kept, and only if it is
   smaller than the input.

The text round trip drops custom sections; web-build.sh strips them all before this runs.

Usage: wasm-order.py <wasm-opt> <in.wasm> <out.wasm> [iterations] [features...]
(env WASM_ORDER_SEEDS: how many seeds, default 3)
"""
import concurrent.futures
import os
import random
import subprocess
import sys
import tempfile
import zlib


def leb(b, p):
    r = s = 0
    while True:
        x = b[p]
        p += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, p


def code_bodies(wasm):
    """The module's bytes before the code section's entries, each function body, the bytes after."""
    p = 8
    while p < len(wasm):
        sid = wasm[p]
        size, q = leb(wasm, p + 1)
        if sid == 10:
            count, r = leb(wasm, q)
            bodies = []
            for _ in range(count):
                n, s = leb(wasm, r)
                bodies.append(wasm[r:s + n])
                r = s + n
            return wasm[:q], bodies, wasm[q + size:]
        p = q + size
    raise SystemExit("wasm-order: no code section")


# How far one move takes a function (places); nearby moves found more per trial than any-to-any
# (measured at 9a8a54c, 6,000 moves: 24 places -592 B, 48 -650, 64 -661, 96 -602, 150 -576).
MOVE = 48


def boundaries(head, bodies, tail, order, marks, first):
    """The compressor's state and output size before each function of `order` (kept from
    `marks` up to `first`), and the module's compressed size."""
    if first == 0:
        z = zlib.compressobj(9)
        size = len(z.compress(head))
    else:
        z, size = marks[first][0].copy(), marks[first][1]
    marks = marks[:first]
    for k in order[first:]:
        marks.append((z.copy(), size))
        size += len(z.compress(bodies[k]))
    return marks, size + len(z.compress(tail)) + len(z.flush())


def gzip9(data):
    """Size under `gzip -9`, what scripts/web-build.sh measures (zlib's deflate differs a little)."""
    return len(subprocess.run(["gzip", "-9", "-c"], input=data, check=True, capture_output=True).stdout)


def main():
    wasm_opt, src, dst = sys.argv[1:4]
    iterations = int(sys.argv[4]) if len(sys.argv) > 4 else 6000
    features = sys.argv[5:]
    wasm_dis = os.path.join(os.path.dirname(wasm_opt), "wasm-dis")
    original = open(src, "rb").read()
    text = subprocess.run([wasm_dis, src], check=True, capture_output=True, text=True).stdout
    lines = text.strip().split("\n")
    if lines[0] != "(module" or lines[-1] != ")":
        raise SystemExit("wasm-order: unexpected wasm-dis output")
    fields, cur = [], []
    for line in lines[1:-1]:
        if line.startswith(" (") and cur:
            fields.append("\n".join(cur))
            cur = []
        cur.append(line)
    fields.append("\n".join(cur))
    # Imports stay before the definitions (the text format requires it); only functions move.
    others = [f for f in fields if not f.startswith(" (func ")]
    funcs = [f for f in fields if f.startswith(" (func ")]

    with tempfile.TemporaryDirectory() as tmp:

        def assemble(order):
            wat = os.path.join(tmp, "m.wat")
            out = os.path.join(tmp, "m.wasm")
            with open(wat, "w") as f:
                f.write("(module\n" + "\n".join(others) + "\n" + "\n".join(funcs[i] for i in order) + "\n)\n")
            subprocess.run([wasm_opt, *features, wat, "-o", out], check=True)
            return open(out, "rb").read()

        start = sorted(range(len(funcs)), key=lambda i: len(funcs[i]))
        head, bodies, tail = code_bodies(assemble(start))
        if len(bodies) != len(funcs):
            raise SystemExit("wasm-order: function count changed")

        seeds = range(1, int(os.environ.get("WASM_ORDER_SEEDS", "3")) + 1)
        # One process per core: the searches are independent (and each is deterministic).
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1)) as pool:
            orders = list(pool.map(search, *zip(*[(head, bodies, tail, iterations, s) for s in seeds])))
        results = [original] + [assemble([start[i] for i in order]) for order in orders]

    sizes = [gzip9(r) for r in results]
    before, after = sizes[0], min(sizes)
    result = results[sizes.index(after)]
    with open(dst, "wb") as f:
        f.write(result)
    print(f"wasm-order: gzip -9 {before} -> {after} B ({len(funcs)} functions, {iterations} moves tried per seed)")


def search(head, bodies, tail, iterations, seed):
    """A local search from the given order: a move is kept when zlib -9 of the module shrinks."""
    rng = random.Random(seed)
    order = list(range(len(bodies)))
    marks, best = boundaries(head, bodies, tail, order, [], 0)
    for _ in range(iterations):
        i = rng.randrange(len(order))
        j = min(len(order) - 1, max(0, i + rng.randint(-MOVE, MOVE)))
        if i == j:
            continue
        trial = order[:]
        trial.insert(j, trial.pop(i))
        first = min(i, j)
        z, size = marks[first][0].copy(), marks[first][1]
        for k in trial[first:]:
            size += len(z.compress(bodies[k]))
        size += len(z.compress(tail)) + len(z.flush())
        if size < best:
            order, best = trial, size
            marks, _ = boundaries(head, bodies, tail, order, marks, first)
    return order


if __name__ == "__main__":
    main()
