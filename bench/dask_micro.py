#!/usr/bin/env python3
"""Ray's task microbenchmarks on Dask distributed, for comparison with
`rayd-bench micro`. Loopback only, no dashboard.

    python3 bench/dask_micro.py --seconds 2 --clients 4   # one JSON line on stdout

A LocalCluster(n_workers=2, threads_per_worker=1, processes=True) on
127.0.0.1; the workloads mirror ray/_private/ray_perf.py as rayd-bench does:

  single_client_tasks_sync           client.submit(small_value).result(), one at a time
  single_client_tasks_async          submit --batch tasks, gather them; repeat
  single_client_tasks_and_get_batch  the same, as batches/s
  multi_client_tasks_async           --clients processes each doing tasks_async at once
  single_client_put_calls            client.scatter(0)
  single_client_get_calls            .result() of one scattered future

Every submit uses pure=False (and scatter hash=False): otherwise Dask gives
the same key to identical calls and answers from its cache.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def small_value():
    return 0


def timed(seconds, round_fn):
    """Runs round_fn (returning the ops it did) until `seconds` passed."""
    ops = 0
    t0 = time.perf_counter()
    while True:
        ops += round_fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return ops, elapsed


def submit_and_gather(client, n):
    futures = [client.submit(small_value, pure=False) for _ in range(n)]
    client.gather(futures)
    return n


def metric(ops, seconds, unit, **extra):
    out = {"ops": ops, "seconds": round(seconds, 6),
           "rate": round(ops / seconds, 3) if seconds > 0 else 0, "unit": unit}
    out.update(extra)
    return out


def wait_go(barrier):
    if not barrier:
        return
    open(os.path.join(barrier, "ready.%d" % os.getpid()), "w").close()
    go = os.path.join(barrier, "go")
    t0 = time.monotonic()
    while not os.path.exists(go):
        if time.monotonic() - t0 > 120:
            raise SystemExit("dask_micro: no go signal within 120 s")
        time.sleep(0.0005)


def client_main(args):
    """One of the multi-client processes: tasks_async against --scheduler."""
    from distributed import Client

    client = Client(args.scheduler)
    submit_and_gather(client, args.batch)  # warm-up
    wait_go(args.barrier)
    t_start = time.time()
    ops, secs = timed(args.seconds, lambda: submit_and_gather(client, args.batch))
    print(json.dumps({"ops": ops, "seconds": secs, "start": t_start,
                      "end": t_start + secs}))
    client.close()


def run_multi(address, args):
    """--clients processes started together (a file barrier); total rate over
    the span from the first start to the last end."""
    with tempfile.TemporaryDirectory(prefix="dask-micro-") as barrier:
        cmd = [sys.executable, os.path.abspath(__file__), "--client-of", address,
               "--seconds", str(args.seconds), "--batch", str(args.batch),
               "--barrier", barrier]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
                 for _ in range(args.clients)]
        t0 = time.monotonic()
        while sum(1 for n in os.listdir(barrier) if n.startswith("ready.")) < args.clients:
            if time.monotonic() - t0 > 120 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.002)
        open(os.path.join(barrier, "go"), "w").close()
        results = []
        for p in procs:
            out, _ = p.communicate()
            lines = [l for l in out.strip().splitlines() if l.startswith("{")]
            if p.returncode == 0 and lines:
                results.append(json.loads(lines[-1]))
    if not results:
        return {"error": "no client finished"}
    ops = sum(r["ops"] for r in results)
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return metric(ops, span, "tasks/s", clients=len(results),
                  per_client_rate=[round(r["ops"] / r["seconds"], 1) for r in results])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--client-of", dest="scheduler", help=argparse.SUPPRESS)
    ap.add_argument("--barrier", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scheduler:
        client_main(args)
        return

    import logging

    import distributed
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(2)
    submit_and_gather(client, 200)  # warm-up: both workers have run a task

    metrics = {}

    def note(name):
        m = metrics[name]
        print("dask %s: %.1f %s" % (name, m.get("rate", 0), m.get("unit", "")),
              file=sys.stderr)

    def sync_round():
        for _ in range(10):
            client.submit(small_value, pure=False).result()
        return 10

    ops, secs = timed(args.seconds, sync_round)
    metrics["single_client_tasks_sync"] = metric(ops, secs, "tasks/s")
    note("single_client_tasks_sync")

    ops, secs = timed(args.seconds, lambda: submit_and_gather(client, args.batch))
    metrics["single_client_tasks_async"] = metric(ops, secs, "tasks/s")
    note("single_client_tasks_async")

    ops, secs = timed(args.seconds, lambda: submit_and_gather(client, args.batch))
    metrics["single_client_tasks_and_get_batch"] = metric(
        ops, secs, "tasks/s", batches_per_s=round(ops / args.batch / secs, 3))
    note("single_client_tasks_and_get_batch")

    metrics["multi_client_tasks_async"] = run_multi(cluster.scheduler_address, args)
    note("multi_client_tasks_async")

    def put_round():
        for _ in range(10):
            client.scatter(0, hash=False)
        return 10

    ops, secs = timed(args.seconds, put_round)
    metrics["single_client_put_calls"] = metric(ops, secs, "puts/s")
    note("single_client_put_calls")

    ref = client.scatter(0, hash=False)

    def get_round():
        for _ in range(10):
            ref.result()
        return 10

    ops, secs = timed(args.seconds, get_round)
    metrics["single_client_get_calls"] = metric(ops, secs, "gets/s")
    note("single_client_get_calls")

    client.close()
    cluster.close()
    print(json.dumps({
        "workload": "dask-micro",
        "distributed_version": distributed.__version__,
        "python_version": sys.version.split()[0],
        "cluster": "LocalCluster(n_workers=2, threads_per_worker=1, processes=True)",
        "seconds": args.seconds,
        "batch": args.batch,
        "clients": args.clients,
        "metrics": metrics,
    }))


if __name__ == "__main__":
    main()
