#!/usr/bin/env python3
"""Load generator for `repro-line gateway` (SQLite store, or PostgreSQL with replicas), on loopback only.

Simulates DEVICES devices (own device_id and seq each) sending batches of 1-100 ops with the
SDK's retry rules (Retry-After on 429/503, backoff on errors, the same batch resent with
X-Retry-Count), over CONNS keep-alive connections. Phases:
  1. saturate for SECS seconds: sustained ops/s;
  2. paced at half that rate: request latency p50/p99, measured at steady state: first the
     paced load runs unmeasured until the export has caught up with phase 1's backlog (pending
     rows back under two export intervals' worth; --no-settle measures the catch-up too);
  3. ID-token links (tokens minted by the emulator, verified against its JWKS): gateway CPU
     per op, compared with raw links (phase 1), so the verification cost shows.
Prints one JSON object; the gateway's peak RSS (VmHWM) is read from /proc.

  scripts/bench-gateway.py --bin target/release/repro-line [--devices 1000] [--secs 20]
  scripts/bench-gateway.py --store postgres://USER@127.0.0.1:PORT/DB --replicas 2   # DB emptied first
With --replicas N the connections are spread round-robin over N gateways (gateway_id bench-<i>)
sharing the store, like a load balancer; CPU is the sum over the gateways, RSS the largest.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

CHANNEL = "1234567890"
OP_IDS = "v7"  # --op-ids
EXPORT_INTERVAL_SECS = 10  # the gateways' export interval during the run
LOGIN = "1650000000"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, secs=60):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def now_at():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class Device:
    def __init__(self, rng, tokens):
        self.id = str(uuid.uuid4())
        self.seq = 0
        self.user = "user-" + self.id[:8]
        self.registered = False
        self.rng = rng
        self.tokens = tokens

    def op_id(self, ms):
        if OP_IDS == "v4":
            # Random (version 4): the worst case for the store's op_id index (every op a
            # random page). Not what the SDK sends.
            h = "%032x" % self.rng.getrandbits(128)
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
        # Version 7 like the SDK (docs/protocol.md; core's next_op_id): the op's unix
        # millisecond, then random bits, so op_ids arrive in roughly increasing order.
        h = "%012x%020x" % (ms, self.rng.getrandbits(80))
        return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def next_batch(self, use_tokens):
        # Built as text (one `at` per batch): the generator shares the gateway's two cores,
        # so its cost per op is kept small.
        n = self.rng.randint(1, 100)
        at = now_at()
        ms = int(time.time() * 1000)
        ops = []
        for _ in range(n):
            self.seq += 1
            head = f'{{"op_id":"{self.op_id(ms)}","seq":{self.seq},"at":"{at}",'
            if not self.registered:
                ops.append(head + f'"type":"set_user_id","user_id":"{self.user}"}}')
                self.registered = True
            elif use_tokens:
                ops.append(head + f'"type":"link_line_id_token","user_id":"{self.user}",'
                           f'"id_token":"{self.rng.choice(self.tokens)}","channel_id":"{CHANNEL}"}}')
            else:
                ops.append(head + f'"type":"link_line_id","user_id":"{self.user}",'
                           f'"line_user_id":"U%032x","channel_id":"{CHANNEL}"}}' % self.rng.getrandbits(128))
        return f'{{"device_id":"{self.id}","ops":[{",".join(ops)}]}}'.encode(), n


class Conn:
    def __init__(self, port, token):
        self.port, self.token, self.r, self.w = port, token, None, None

    async def post(self, body, retry):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"POST /v1/identity/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Repro-Token: {self.token}\r\n"
                f"Content-Type: application/json\r\nX-Retry-Count: {retry}\r\nContent-Length: {len(body)}\r\n\r\n")
        self.w.write(head.encode() + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length, retry_after = 0, None
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            elif k.lower() == "retry-after":
                retry_after = float(v)
        await self.r.readexactly(length)
        return status, retry_after

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None


async def run_phase(ports, token, devices, conns, secs, rate=None, use_tokens=False):
    """Returns (ops applied, requests, latencies in s, errors)."""
    queue = asyncio.Queue()
    for d in devices:
        queue.put_nowait(d)
    stop_at = time.time() + secs
    stats = {"ops": 0, "requests": 0, "lat": [], "retries": 0}
    interval = None if rate is None else 1.0 / rate  # seconds between requests, all workers
    next_slot = [time.time()]

    async def worker(i):
        conn = Conn(ports[i % len(ports)], token)
        backoff = 0.1
        while time.time() < stop_at:
            d = await queue.get()
            body, n = d.next_batch(use_tokens)
            retry = 0
            while time.time() < stop_at + 30:
                if interval is not None:
                    slot = next_slot[0] = max(next_slot[0] + interval, time.time())
                    await asyncio.sleep(max(0.0, slot - time.time()))
                t0 = time.perf_counter()
                try:
                    status, retry_after = await conn.post(body, retry)
                except (OSError, ConnectionError, asyncio.IncompleteReadError):
                    conn.close()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5)
                    retry += 1
                    stats["retries"] += 1
                    continue
                stats["lat"].append(time.perf_counter() - t0)
                stats["requests"] += 1
                if status == 200:
                    stats["ops"] += n
                    backoff = 0.1
                    break
                stats["retries"] += 1
                retry += 1
                await asyncio.sleep(retry_after if retry_after is not None else backoff)
            queue.put_nowait(d)
        conn.close()

    started = time.time()
    await asyncio.gather(*(worker(i) for i in range(conns)))
    stats["elapsed"] = time.time() - started
    return stats


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def histogram(ports):
    """The gateways' own request latency histogram (summed): {upper bound in s: cumulative count}."""
    out = {}
    for port in ports:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith("repro_gateway_request_seconds_bucket"):
                le = line.split('le="')[1].split('"')[0]
                out[float(le)] = out.get(float(le), 0) + int(line.rsplit(" ", 1)[1])
    return out


def all_histograms(ports):
    """Every histogram of the gateways' /metrics (summed): {series: {upper bound: cumulative count}}."""
    out = {}
    for port in ports:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        for line in text.splitlines():
            if "_bucket{" not in line:
                continue
            name, rest = line.split("_bucket{", 1)
            labels, _, value = rest.rpartition("} ")
            le = labels.split('le="')[1].split('"')[0]
            other = ",".join(p for p in labels.split(",") if not p.startswith("le="))
            series = out.setdefault(name + (f"{{{other}}}" if other else ""), {})
            series[float(le)] = series.get(float(le), 0) + int(value)
    return out


def phase_summary(before, after):
    """Per histogram over a phase: count, and the buckets holding p50, p99 and the maximum."""
    out = {}
    for series, buckets in after.items():
        diff = {le: buckets[le] - before.get(series, {}).get(le, 0) for le in buckets}
        total = diff.get(float("inf"), 0)
        if not total:
            continue
        at = lambda q: next(le for le in sorted(diff) if diff[le] >= q * total)
        name = series.replace("repro_gateway_", "")
        out[name] = {"n": total, "p50_le": at(0.5), "p99_le": at(0.99), "max_le": at(1.0)}
        if name.split("{")[0].endswith("_seconds") and 0.05 in diff:
            out[name]["over_50ms"] = total - diff[0.05]
            if 0.01 in diff:
                out[name]["over_10ms"] = total - diff[0.01]
    return out


def server_side(before, after):
    """From two histogram snapshots: the bucket holding the p99 (ms) and the share answered within 50 ms."""
    diff = {le: after[le] - before.get(le, 0) for le in after}
    total = diff.get(float("inf"), 0)
    if not total:
        return None, None
    p99 = next((le for le in sorted(diff) if diff[le] >= 0.99 * total), float("inf"))
    return (p99 * 1000 if p99 != float("inf") else "above 1000"), round(diff.get(0.05, 0) / total, 4)


def pending_rows(ports):
    """Rows applied but not yet in an uploaded file, summed over the gateways (/metrics)."""
    total = 0
    for port in ports:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith("repro_gateway_pending_rows "):
                total += int(float(line.split()[1]))
    return total


def settle(ports, token, devices, conns, rate, ops_per_s, limit_s=90):
    """Runs the paced load, unmeasured, until the export has caught up with the saturated
    phase's backlog: pending rows under two export intervals' worth at this rate. Returns
    the seconds it took (None if it did not within limit_s)."""
    started = time.time()
    while time.time() - started < limit_s:
        if pending_rows(ports) <= 2 * EXPORT_INTERVAL_SECS * ops_per_s:
            return round(time.time() - started, 1)
        asyncio.run(run_phase(ports, token, devices, conns, 2, rate=rate))
    return None


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000 if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/repro-line")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--store", default=None, help="postgres://... (default: a fresh SQLite file)")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--half-ops", type=float, default=None,
                    help="ops/s of the paced phase (default: half the saturated rate; "
                         "10000 is half the 20,000 ops/s target)")
    ap.add_argument("--no-settle", action="store_true",
                    help="measure the paced phase right after the saturated one, while the export "
                         "is still catching up with its backlog")
    ap.add_argument("--op-ids", choices=["v7", "v4"], default="v7",
                    help="op_id version: v7 (time-ordered, what the SDK sends; default) or v4 "
                         "(random: the op_id index's worst case, what this script sent before)")
    args = ap.parse_args()
    global OP_IDS
    OP_IDS = args.op_ids

    tmp = tempfile.mkdtemp(prefix="bench-gateway-")
    procs = []
    try:
        moto_port, emu_port = free_port(), free_port()
        gw_ports = [free_port() for _ in range(args.replicas)]
        procs.append(subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([args.bin, "emulator", "--port", str(emu_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(moto_port)
        wait_port(emu_port)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{moto_port}/repro-data-store", method="PUT"))
        tokens = []
        for i in range(200):
            req = urllib.request.Request(
                f"http://127.0.0.1:{emu_port}/admin/line/id-tokens", method="POST",
                data=json.dumps({"line_user_id": "U%032x" % (0xbe0000 + i), "login_channel_id": LOGIN}).encode())
            tokens.append(json.load(urllib.request.urlopen(req))["id_token"])
        store = args.store or f"sqlite://{tmp}/gateway.db"
        if store.startswith("postgres"):
            # A fresh schema each run: the tables are created by the first gateway.
            subprocess.run(["psql", store, "-qc", "DROP SCHEMA public CASCADE; CREATE SCHEMA public"],
                           check=True, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, PGOPTIONS="--client-min-messages=warning"))
        gws = []
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        for i, gw_port in enumerate(gw_ports):
            config = os.path.join(tmp, f"gateway-{i}.toml")
            with open(config, "w") as f:
                f.write(f"""gateway_id = "bench-{i}"
listen = "127.0.0.1:{gw_port}"
store = "{store}"
line_api = "http://127.0.0.1:{emu_port}"
export_interval_secs = {EXPORT_INTERVAL_SECS}
device_rate = 1000.0
ip_rate = 1000000.0
[s3]
endpoint = "http://127.0.0.1:{moto_port}"
[[apps]]
name = "raw"
tokens = ["raw-token"]
repro_app_id = "benchapp"
identity = "any"
[[apps.channels]]
id = "{CHANNEL}"
[[apps]]
name = "verified"
tokens = ["verified-token"]
repro_app_id = "benchapp2"
[[apps.channels]]
id = "{CHANNEL}"
login_channels = ["{LOGIN}"]
""")
            gw = subprocess.Popen([args.bin, "gateway", "--config", config], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(gw)
            gws.append(gw)
            wait_port(gw_port)
        cpu = lambda: sum(cpu_seconds(g.pid) for g in gws)
        rng = random.Random(7)
        devices = [Device(rng, tokens) for _ in range(args.devices)]
        # The machine's other CPU users during the saturated phase: this generator and moto.
        own = lambda: sum(os.times()[:2])
        cpu0, gen0, moto0, wall0 = cpu(), own(), cpu_seconds(procs[0].pid), time.time()
        sat = asyncio.run(run_phase(gw_ports, "raw-token", devices, args.conns, args.secs))
        cpu_raw = cpu() - cpu0
        wall = time.time() - wall0
        gen_cores = (own() - gen0) / wall
        moto_cores = (cpu_seconds(procs[0].pid) - moto0) / wall
        ops_s = sat["ops"] / sat["elapsed"]
        avg_ops = sat["ops"] / max(1, sat["requests"])
        half_ops = args.half_ops or ops_s / 2
        settled = None if args.no_settle else settle(
            gw_ports, "raw-token", devices, args.conns, half_ops / avg_ops, half_ops)
        h0, phases0 = histogram(gw_ports), all_histograms(gw_ports)
        half = asyncio.run(run_phase(gw_ports, "raw-token", devices, args.conns, args.secs,
                                     rate=half_ops / avg_ops))
        # Measured inside the gateway (request read → response): no wait for the generator's core.
        gw_p99_bucket, gw_within_50 = server_side(h0, histogram(gw_ports))
        # Where the time went in the paced phase (the SQLite writer's and exporter's stopwatch).
        phases = phase_summary(phases0, all_histograms(gw_ports))
        tdevices = [Device(rng, tokens) for _ in range(args.devices)]
        cpu1 = cpu()
        tok = asyncio.run(run_phase(gw_ports, "verified-token", tdevices, args.conns, args.secs / 2))
        cpu_tok = cpu() - cpu1
        result = {
            "store": store.split(":")[0], "replicas": args.replicas,
            "devices": args.devices, "connections": args.conns,
            "saturated_ops_per_s": round(ops_s), "saturated_requests": sat["requests"],
            "avg_ops_per_batch": round(avg_ops, 1), "saturated_p99_ms": pct(sat["lat"], 0.99),
            "saturated_cores_gateway_generator_moto": [round(cpu_raw / wall, 2), round(gen_cores, 2),
                                                       round(moto_cores, 2)],
            "load_average_1m": round(os.getloadavg()[0], 1),
            "half_load_settle_s": "off" if args.no_settle else (settled if settled is not None else "not within 90 s"),
            "half_load_ops_per_s": round(half["ops"] / half["elapsed"]),
            "half_load_p50_ms": pct(half["lat"], 0.5), "half_load_p99_ms": pct(half["lat"], 0.99),
            "half_load_gateway_p99_bucket_ms": gw_p99_bucket,
            "half_load_gateway_share_within_50ms": gw_within_50,
            "gateway_cpu_us_per_raw_op": round(cpu_raw / max(1, sat["ops"]) * 1e6, 1),
            "token_ops_per_s": round(tok["ops"] / tok["elapsed"]),
            "gateway_cpu_us_per_token_op": round(cpu_tok / max(1, tok["ops"]) * 1e6, 1),
            "retries": sat["retries"] + half["retries"] + tok["retries"],
            "gateway_peak_rss_mb": max(vm_hwm_mb(g.pid) or 0 for g in gws),
            "half_load_gateway_phases": phases,
        }
        print(json.dumps(result, indent=1))
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGKILL)
            p.wait()
        # The store and the WAL reach hundreds of MB: do not leave them behind.
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
