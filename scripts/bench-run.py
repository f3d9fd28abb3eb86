#!/usr/bin/env python3
"""Runs the repro-line benchmarks and prints one Markdown table per benchmark.

Called by scripts/bench.sh (which builds and installs what is needed); it can be
run directly once the release bench binaries exist:

    python3 scripts/bench-run.py [--runs 3] [--peer-runs 1] [--ops 100000] \
        [--peers-dir /tmp/repro-line-bench-peers] [enqueue delivery peers burst cold sizes]

Every client runs in its own process; its CPU (user+sys) and peak RSS come from
wait4(2) on that process, so no server's work is counted. Medians of --runs runs.
Results (JSON + Markdown) go to target/bench-out/.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
OUT = os.path.join(ROOT, "target", "bench-out")
ALL = ["enqueue", "delivery", "peers", "burst", "cold", "sizes"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_measured(cmd, timeout=900, cwd=None, env=None):
    """Runs cmd, returns (last JSON line of stdout or None, usage dict). Usage via wait4."""
    err = tempfile.TemporaryFile()
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=cwd, env=env)
    # communicate() would reap the child before wait4 could read its rusage: read stdout
    # on a thread and reap the child here with wait4.
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()), daemon=True)
    reader.start()
    deadline = start + timeout
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            timed_out = True
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.01)
    reader.join(timeout=10)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    out = b"".join(c for c in chunks if c).decode(errors="replace")
    result = None
    for line in reversed(out.strip().splitlines()):
        try:
            result = json.loads(line)
            break
        except ValueError:
            continue
    usage = {
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "maxrss_kib": ru.ru_maxrss,
        "wall_s": wall,
        "rc": p.returncode,
        "timed_out": timed_out,
    }
    if p.returncode != 0 or result is None:
        err.seek(0)
        usage["stderr_tail"] = err.read().decode(errors="replace")[-2000:]
        log(f"{' '.join(cmd)} exited {p.returncode}{' (timeout)' if timed_out else ''}: {usage['stderr_tail'][-500:]}")
    return result, usage


class Server:
    """A server process that prints {"url": …} as its first line."""

    def __init__(self, cmd, cwd=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd, text=True)
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{cmd} did not start")
        self.url = json.loads(line)["url"]

    def http_stats(self):
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=30) as r:
            return json.loads(r.read())

    def line_stats(self):
        self.p.stdin.write("stats\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def stop(self):
        try:
            self.p.stdin.close()
        except Exception:
            pass
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |")
    return "\n".join(lines)


def emulator_available():
    return os.path.exists(os.path.join(BIN, "rl-emulator-server"))


# ---------------------------------------------------------------- benchmarks


def bench_enqueue(a):
    rows = []
    raw = {}
    for mode, threads in [("file", 1), ("file", 2), ("sqlite", 1), ("sqlite", 2)]:
        calls = a.enqueue_calls if threads == 1 else a.enqueue_calls // 2
        runs = []
        for i in range(a.runs):
            log(f"enqueue {mode} threads={threads} run {i + 1}/{a.runs}")
            r, u = run_measured([os.path.join(BIN, "rl-enqueue"), "--mode", mode, "--calls", str(calls), "--threads", str(threads)])
            if r:
                runs.append({**r["latency"], "calls_per_s": r["calls_per_s"], "calls": r["calls"]})
        raw[f"{mode}-{threads}"] = runs
        rows.append((mode, threads, runs))
    by = {(m, t): rs for m, t, rs in rows}
    out = []
    for (m, t), rs in by.items():
        sq = by.get(("sqlite", t))
        ratio50 = med(sq, "p50_us") / med(rs, "p50_us") if m == "file" and sq and med(rs, "p50_us") else None
        ratio99 = med(sq, "p99_us") / med(rs, "p99_us") if m == "file" and sq and med(rs, "p99_us") else None
        label = "repro-line file store" if m == "file" else "rusqlite insert (WAL, synchronous=NORMAL)"
        out.append([label, t, med(rs, "calls"), med(rs, "p50_us"), med(rs, "p90_us"), med(rs, "p99_us"), med(rs, "p999_us"), med(rs, "max_us"),
                    med(rs, "calls_per_s"), f"{ratio50:.1f}× / {ratio99:.1f}×" if ratio50 else "—"])
    md = table(["store", "threads", "calls", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "calls/s", "sqlite ÷ ours (p50 / p99)"], out)
    return md, raw


def deliver_once(url, n, server_stats):
    r, u = run_measured([os.path.join(BIN, "rl-deliver"), "--url", url, "--ops", str(n)])
    s = server_stats()
    if not r:
        return None
    return {
        "ops_per_s": r["ops_per_s"],
        "cpu_us_per_op": u["cpu_s"] * 1e6 / n,
        "in_process_cpu_us_per_op": r["cpu_us_per_op"],
        "enqueue_cpu_us_per_op": r["enqueue_cpu_us_per_op"],
        "requests": r["requests"],
        "peak_rss_mib": u["maxrss_kib"] / 1024,
        "delivered_reports": r["delivered"],
        "duplicate_reports": r["duplicate_reports"],
        "server": s,
        "elapsed_s": r["elapsed_s"],
    }


def bench_delivery(a):
    rows, raw = [], {}
    targets = [("rl-sink (raw TCP, Rust)", "sink")]
    if emulator_available():
        targets.insert(0, ("emulator", "emulator"))
    for label, kind in targets:
        runs = []
        for i in range(a.runs):
            log(f"delivery -> {kind} run {i + 1}/{a.runs}")
            if kind == "sink":
                srv = Server([os.path.join(BIN, "rl-sink")])
                stats = srv.http_stats
            else:
                srv = Server([os.path.join(BIN, "rl-emulator-server")])
                stats = srv.line_stats
            try:
                r = deliver_once(srv.url, a.ops, stats)
            finally:
                srv.stop()
            if r:
                s = r["server"]
                r["distinct"] = s.get("distinct", s.get("ops_applied"))
                r["duplicates"] = s.get("duplicates", s.get("ops_duplicate"))
                r["bytes_per_op"] = s["bytes"] / a.ops if "bytes" in s else None
                runs.append(r)
        raw[kind] = runs
        rows.append([label, a.ops, med(runs, "ops_per_s"), med(runs, "cpu_us_per_op"), med(runs, "enqueue_cpu_us_per_op"), med(runs, "requests"),
                     med(runs, "bytes_per_op"), med(runs, "peak_rss_mib"), med(runs, "distinct"), med(runs, "duplicates")])
    md = table(["endpoint", "ops", "ops/s", "client CPU µs/op", "of which enqueue µs/op", "requests", "bytes/op (wire)", "peak RSS MiB", "applied once", "duplicates"], rows)
    return md, raw


def bench_peers(a):
    pdir = a.peers_dir
    node_ok = os.path.isdir(os.path.join(pdir, "node_modules"))
    py = os.path.join(pdir, "venv", "bin", "python")
    here = os.path.join(ROOT, "scripts", "bench-peers")
    for f in os.listdir(here):
        if f.endswith(".mjs"):
            shutil.copy(os.path.join(here, f), pdir)
    clients = [("repro-line (Rust)", [os.path.join(BIN, "rl-deliver"), "--url", "{url}", "--ops", str(a.ops)])]
    if node_ok:
        for lib in ["segment", "amplitude", "posthog"]:
            clients.append((f"node {dict(segment='@segment/analytics-node', amplitude='@amplitude/analytics-node', posthog='posthog-node')[lib]}",
                            ["node", os.path.join(pdir, "peer.mjs"), lib, "{url}", str(a.ops), "raised"]))
        clients.append(("node posthog-node (default queue cap)", ["node", os.path.join(pdir, "peer.mjs"), "posthog", "{url}", str(a.ops), "default"]))
    if os.path.exists(py):
        for lib, name in [("segment", "segment-analytics-python"), ("amplitude", "amplitude-analytics"), ("posthog", "posthog")]:
            clients.append((f"python {name}", [py, os.path.join(here, "peer.py"), lib, "{url}", str(a.ops), "raised"]))
    raw, rows = {}, []
    for label, cmd in clients:
        runs = []
        nruns = a.runs if label.startswith("repro-line") else a.peer_runs
        for i in range(nruns):
            log(f"peers: {label} run {i + 1}/{nruns}")
            srv = Server(["node", os.path.join(pdir, "sink.mjs")], cwd=pdir)
            try:
                r, u = run_measured([c.replace("{url}", srv.url) for c in cmd], timeout=a.peer_timeout, cwd=pdir)
                s = srv.http_stats()
            finally:
                srv.stop()
            elapsed = (r or {}).get("elapsed_s") or u["wall_s"]
            runs.append({
                "ops_per_s": s["distinct"] / elapsed if elapsed else None,
                "cpu_us_per_op": u["cpu_s"] * 1e6 / a.ops,
                "requests": s["requests"],
                "bytes_per_op": s["bytes"] / max(1, s["distinct"]),
                "peak_rss_mib": u["maxrss_kib"] / 1024,
                "delivered": s["distinct"],
                "duplicates": s["duplicates"],
                "lost": a.ops - s["distinct"],
                "timed_out": u["timed_out"],
                "rc": u["rc"],
                "elapsed_s": elapsed,
            })
        raw[label] = runs
    ours = med(raw["repro-line (Rust)"], "cpu_us_per_op")
    for label, runs in raw.items():
        cpu = med(runs, "cpu_us_per_op")
        note = "timed out" if any(r["timed_out"] for r in runs) else ("exit " + str(runs[0]["rc"]) if runs[0]["rc"] else "")
        rows.append([label, med(runs, "ops_per_s"), cpu, med(runs, "requests"), med(runs, "bytes_per_op"), med(runs, "peak_rss_mib"),
                     med(runs, "delivered"), med(runs, "lost"), med(runs, "duplicates"),
                     "1×" if label.startswith("repro-line") else (f"{cpu / ours:,.0f}×" if ours and cpu else "—"), note])
    md = table(["client", "delivered ops/s", "client CPU µs/op", "requests", "bytes/op (wire)", "peak RSS MiB", "delivered", "lost", "duplicated", "CPU/op ÷ repro-line", "note"], rows)
    return md, raw


def bench_burst(a):
    rows, raw = [], {}
    use_emu = emulator_available()
    for calls in [1000, 10]:
        runs = []
        for i in range(a.runs):
            log(f"burst {calls} run {i + 1}/{a.runs}")
            srv = Server([os.path.join(BIN, "rl-emulator-server")]) if use_emu else Server([os.path.join(BIN, "rl-sink")])
            stats = srv.line_stats if use_emu else srv.http_stats
            try:
                before = stats()
                r, u = run_measured([os.path.join(BIN, "rl-burst"), "--url", srv.url, "--calls", str(calls), "--offset", str(i * 100_000)])
                after = stats()
            finally:
                srv.stop()
            if r:
                # The endpoint's counter includes the client's first set_user_id request, made before the burst.
                server_req = after.get("requests", 0) - before.get("requests", 0) - 1 if "requests" in after else None
                runs.append({**r, "server_requests": server_req})
        raw[calls] = runs
        limit = 11 if calls == 1000 else 1
        rows.append([calls, med(runs, "burst_ms"), med(runs, "requests"), med(runs, "server_requests"), limit, med(runs, "drained_ms"),
                     "emulator" if use_emu else "rl-sink"])
    md = table(["calls in burst", "burst took ms", "requests (client)", "requests (endpoint)", "target ≤", "all reported after ms", "endpoint"], rows)
    return md, raw


def bench_cold(a):
    d = tempfile.mkdtemp(prefix="rl-cold-")
    try:
        log("cold: preparing a store with 10,000 pending ops")
        prep, _ = run_measured([os.path.join(BIN, "rl-cold"), "prepare", "--dir", d, "--pending", "10000"])
        runs = []
        for i in range(max(5, a.runs)):
            r, u = run_measured([os.path.join(BIN, "rl-cold"), "measure", "--dir", d])
            if r:
                runs.append(r)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    rows = [[med(runs, "pending"), (prep or {}).get("journal_bytes"), med(runs, "new_ms"), med(runs, "rss_growth_kib") / 1024 if runs else None,
             med(runs, "rss_growth_settled_kib") / 1024 if runs else None, len(runs)]]
    md = table(["pending ops", "journal bytes", "Client::new ms (median)", "RSS growth MiB", "RSS growth after 200 ms MiB", "runs"], rows)
    return md, {"prepare": prep, "runs": runs}


def bench_sizes(a):
    rows, raw = [], {}
    cli = os.path.join(BIN, "repro-line")
    if os.path.exists(cli):
        stripped = os.path.join(OUT, "repro-line.stripped")
        shutil.copy(cli, stripped)
        subprocess.run(["strip", stripped], check=False)
        raw["cli_bytes"] = os.path.getsize(stripped)
        rows.append(["release CLI `repro-line` (stripped, x86_64 Linux)", f"{raw['cli_bytes']:,} B ({raw['cli_bytes'] / 1048576:.2f} MiB)", "this run"])
    else:
        rows.append(["release CLI `repro-line` (stripped, x86_64 Linux)", "not built (cargo build --release -p repro-line failed)", "—"])
    sizes_dir = os.path.join(ROOT, "target", "sizes")
    for label, names in [("UniFFI cdylib (release, stripped)", ["uniffi", "cdylib"]), ("wasm (gzip)", ["wasm"])]:
        found = None
        if os.path.isdir(sizes_dir):
            for f in sorted(os.listdir(sizes_dir)):
                if any(n in f for n in names) and f.endswith(".txt"):
                    found = (f, open(os.path.join(sizes_dir, f)).read().strip())
        rows.append([label, found[1] if found else "see section", f"target/sizes/{found[0]}" if found else "—"])
    md = table(["artifact", "size", "source"], rows)
    return md, raw


def header():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "commit": commit + ("+dirty" if dirty else ""),
        "kernel": os.uname().release,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", nargs="*", default=ALL)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", type=int, default=1)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--enqueue-calls", type=int, default=200_000)
    ap.add_argument("--peer-timeout", type=int, default=300)
    ap.add_argument("--peers-dir", default="/tmp/repro-line-bench-peers")
    a = ap.parse_args()
    which = [w for w in a.which if w != "all"] or ALL
    for w in which:
        if w not in ALL:
            ap.error(f"unknown benchmark {w}; choose from {' '.join(ALL)}")
    os.makedirs(OUT, exist_ok=True)
    h = header()
    fns = dict(enqueue=bench_enqueue, delivery=bench_delivery, peers=bench_peers, burst=bench_burst, cold=bench_cold, sizes=bench_sizes)
    titles = dict(enqueue="1. Caller cost (enqueue)", delivery="2. Delivery throughput and CPU per op", peers="3. Peers, same job, same sink",
                  burst="4. Requests per burst", cold="5. Cold start with 10,000 pending ops", sizes="6. Sizes")
    report = [f"date {h['date']} · {h['nproc']} × {h['cpu']} · kernel {h['kernel']} · commit {h['commit']} · runs {a.runs} (peers {a.peer_runs}) · ops {a.ops:,}"]
    results = {"header": h, "args": vars(a)}
    for w in which:
        t0 = time.time()
        md, raw = fns[w](a)
        results[w] = raw
        report.append(f"\n### {titles[w]}\n\n{md}\n\n({time.time() - t0:.0f} s)")
        print(report[-1], flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(OUT, f"results-{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(OUT, f"results-{stamp}.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    print("\n" + report[0])
    log(f"results in target/bench-out/results-{stamp}.{{md,json}}")


if __name__ == "__main__":
    main()
