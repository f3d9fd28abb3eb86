"""Sends N identify calls through one Python analytics SDK to the local sink and
waits until the SDK has flushed and shut down. CPU and peak RSS are measured by
the parent (wait4), so this prints only timings.

Usage: python peer.py segment|amplitude|posthog URL N [default|raised]
  raised: the SDK's in-memory queue cap is lifted (as repro-line's max_queue_ops is in the bench).
"""
import json
import logging
import sys
import time

lib, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "raised"
logging.disable(logging.CRITICAL)
cap = 10_000_000 if mode == "raised" else None


def line(i):
    return "U%032x" % i


t0 = time.perf_counter()
if lib == "segment":
    from segment.analytics import Client

    kw = {"max_queue_size": cap} if cap else {}
    c = Client("bench", host=url, **kw)
    for i in range(n):
        c.identify(f"member-{i}", {"line_user_id": line(i), "channel_id": "1234567890"})
    enq = time.perf_counter()
    c.flush()
    c.shutdown()
elif lib == "amplitude":
    from amplitude import Amplitude, Config, EventOptions, Identify

    c = Amplitude("bench-api-key", Config(server_url=f"{url}/2/httpapi"))
    for i in range(n):
        c.identify(Identify().set("line_user_id", line(i)).set("channel_id", "1234567890"), EventOptions(user_id=f"member-{i}"))
    enq = time.perf_counter()
    c.flush()
    c.shutdown()
elif lib == "posthog":
    from posthog import Posthog

    kw = {"max_queue_size": cap} if cap else {}
    p = Posthog("phc_bench", host=url, flush_at=100, **kw)
    for i in range(n):
        p.set(distinct_id=f"member-{i}", properties={"line_user_id": line(i), "channel_id": "1234567890"})
    enq = time.perf_counter()
    p.flush(timeout_seconds=900)
    p.shutdown()
else:
    raise SystemExit(f"unknown lib {lib}")
done = time.perf_counter()
print(json.dumps({"lib": f"python:{lib}", "mode": mode, "n": n, "enqueue_s": enq - t0, "elapsed_s": done - t0}))
