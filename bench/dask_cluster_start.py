#!/usr/bin/env python3
"""Start time of Dask's LocalCluster with 2 worker processes, for comparison
with `rayd-bench cluster-start`. Loopback only, no dashboard.

    python3 bench/dask_cluster_start.py --runs 5     # one JSON line on stdout

Each sample runs in a fresh interpreter (`--single`), so that no run benefits
from a warm process; the imports are timed separately and are not part of
the start time, which covers LocalCluster(...) until a Client sees both
workers (the analogue of `rayctl status` showing every node ALIVE).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def single():
    t_import = time.perf_counter()
    import logging

    from distributed import Client, LocalCluster

    import_ms = (time.perf_counter() - t_import) * 1000

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    constructed_ms = (time.perf_counter() - t0) * 1000
    client = Client(cluster)
    client.wait_for_workers(2)
    ready_ms = (time.perf_counter() - t0) * 1000

    t1 = time.perf_counter()
    client.close()
    cluster.close()
    close_ms = (time.perf_counter() - t1) * 1000
    print(json.dumps({"import_ms": import_ms, "constructed_ms": constructed_ms,
                      "ready_ms": ready_ms, "close_ms": close_ms}))


def summary(xs):
    return {"n": len(xs), "median": round(statistics.median(xs), 1),
            "min": round(min(xs), 1), "max": round(max(xs), 1),
            "mean": round(statistics.mean(xs), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single:
        single()
        return

    import distributed

    samples = []
    for i in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--single"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        sample = json.loads(out.strip().splitlines()[-1])
        samples.append(sample)
        print(f"dask run {i + 1}/{args.runs}: ready after "
              f"{sample['ready_ms']:.1f} ms", file=sys.stderr)
    print(json.dumps({
        "workload": "dask-local-cluster-start",
        "distributed_version": distributed.__version__,
        "python_version": sys.version.split()[0],
        "runs": args.runs,
        "ready_ms": summary([s["ready_ms"] for s in samples]),
        "constructed_ms": summary([s["constructed_ms"] for s in samples]),
        "import_ms": summary([s["import_ms"] for s in samples]),
        "samples_ready_ms": [round(s["ready_ms"], 1) for s in samples],
    }))


if __name__ == "__main__":
    main()
