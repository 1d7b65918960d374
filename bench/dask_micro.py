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

and Ray's actor microbenchmarks on Dask actors (client.submit(SmallActor,
actor=True); calls are ActorFutures, waited on with .result()):

  1_1_actor_calls_sync            actor.small_value().result(), one at a time
  1_1_actor_calls_async           --batch calls on one actor, then wait for all; repeat
  1_1_actor_calls_concurrent      the same on an `async def` method (Dask has no
                                  max_concurrency: coroutine methods run unbounded
                                  on the worker's event loop)
  1_n_actor_calls_async           one client, 4 actors over the 2 workers,
                                  --batch calls on each per round
  n_n_actor_calls_async           --clients processes at once, each spreading
                                  --batch calls per round over 4 shared actors
  n_n_actor_calls_with_arg_async  the same, each call passing a scattered
                                  future of a 100-int list (resolved by the method)
  many_actors                     create --many-actors actors, call each once (seconds)

Actor calls go through a Client(direct_to_workers=True): with Dask's default
every actor call is relayed by the scheduler. The actors are created in the
main process and shared with the client processes by rebuilding
Actor(SmallActor, worker_address, key) there. --only-actors skips the task
metrics.

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


class SmallActor:
    """The actor of every actor metric."""

    def small_value(self):
        return 0

    async def small_value_async(self):
        return 0

    def small_arg(self, x):
        # Dask hands a Future argument of an actor method over unresolved (a
        # Future rebuilt on the worker): fetch its value here, as Ray would
        # have before the call.
        if hasattr(x, "result"):
            x = x.result()
        return len(x)


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


def call_and_wait(actors, n, method="small_value", arg=None):
    """n calls spread round-robin over `actors`, then waits for all of them."""
    if arg is None:
        calls = [getattr(actors[i % len(actors)], method)() for i in range(n)]
    else:
        calls = [getattr(actors[i % len(actors)], method)(arg) for i in range(n)]
    for c in calls:
        c.result()
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
    """One of the multi-client processes: tasks_async against --scheduler, or
    with --actor-workload calls on the 4 actors named in the barrier's
    actors.json."""
    import logging

    from distributed import Client

    # Hundreds of in-flight actor calls open hundreds of comms; Dask logs every
    # pool trim ("Collecting unused comms") at INFO.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if args.actor_workload:
        from distributed.actor import Actor

        client = Client(args.scheduler, direct_to_workers=True)
        with open(os.path.join(args.barrier, "actors.json")) as f:
            actors = [Actor(SmallActor, addr, key) for addr, key in json.load(f)]
        if args.actor_workload == "calls_with_arg":
            [arg] = client.scatter([list(range(100))], hash=False)
            round_fn = lambda: call_and_wait(actors, args.batch, "small_arg", arg)
        else:
            round_fn = lambda: call_and_wait(actors, args.batch)
        call_and_wait(actors, 4 * len(actors))  # warm-up
    else:
        client = Client(args.scheduler)
        round_fn = lambda: submit_and_gather(client, args.batch)
        round_fn()  # warm-up
    wait_go(args.barrier)
    t_start = time.time()
    ops, secs = timed(args.seconds, round_fn)
    print(json.dumps({"ops": ops, "seconds": secs, "start": t_start,
                      "end": t_start + secs}))
    client.close()


def run_multi(address, args, actor_workload=None, actors=(), unit="tasks/s", **extra):
    """--clients processes started together (a file barrier); total rate over
    the span from the first start to the last end. With actor_workload, the
    processes call `actors` (passed as (worker address, key) pairs)."""
    with tempfile.TemporaryDirectory(prefix="dask-micro-") as barrier:
        cmd = [sys.executable, os.path.abspath(__file__), "--client-of", address,
               "--seconds", str(args.seconds), "--batch", str(args.batch),
               "--barrier", barrier]
        if actor_workload:
            with open(os.path.join(barrier, "actors.json"), "w") as f:
                json.dump([[a._address, a.key] for a in actors], f)
            cmd += ["--actor-workload", actor_workload]
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
    return metric(ops, span, unit, clients=len(results),
                  per_client_rate=[round(r["ops"] / r["seconds"], 1) for r in results],
                  **extra)


def actor_metrics(cluster, args, metrics, note):
    """The actor metrics, through a client of their own that calls the
    actors' workers directly."""
    import logging

    from distributed import Client

    logging.getLogger("distributed").setLevel(logging.ERROR)  # see client_main
    client = Client(cluster, direct_to_workers=True)  # also the default client now
    workers = sorted(client.scheduler_info()["workers"])

    def make_actors(n):
        """n actors, round-robin over the workers, as Actor proxies."""
        futures = [client.submit(SmallActor, actor=True, pure=False,
                                 workers=[workers[i % len(workers)]])
                   for i in range(n)]
        return client.gather(futures)

    one = make_actors(1)
    call_and_wait(one, 100)  # warm-up

    def sync_round():
        for _ in range(10):
            one[0].small_value().result()
        return 10

    ops, secs = timed(args.seconds, sync_round)
    metrics["1_1_actor_calls_sync"] = metric(
        ops, secs, "calls/s",
        what="one actor; actor.small_value().result(), one call at a time")
    note("1_1_actor_calls_sync")

    ops, secs = timed(args.seconds, lambda: call_and_wait(one, args.batch))
    metrics["1_1_actor_calls_async"] = metric(
        ops, secs, "calls/s",
        what="one actor; %d small_value() calls issued, then all .result()ed; "
             "repeated. Each in-flight Dask actor call holds a TCP comm of its "
             "own from the client's pool (Client connection_limit=512), so a "
             "batch opens hundreds of connections" % args.batch)
    note("1_1_actor_calls_async")

    call_and_wait(one, 100, "small_value_async")  # warm-up
    ops, secs = timed(args.seconds,
                      lambda: call_and_wait(one, args.batch, "small_value_async"))
    metrics["1_1_actor_calls_concurrent"] = metric(
        ops, secs, "calls/s",
        what="one actor; as 1_1_actor_calls_async but on `async def "
             "small_value_async()`. Dask actors have no max_concurrency: plain "
             "methods run one at a time in the worker's single actor thread "
             "(shared by all actors of that worker), coroutine methods run on "
             "the worker's event loop with no concurrency limit, which is "
             "Dask's only concurrent actor mode (Ray's figure: max_concurrency=16)")
    note("1_1_actor_calls_concurrent")

    four = make_actors(4)
    call_and_wait(four, 100)  # warm-up
    ops, secs = timed(args.seconds, lambda: call_and_wait(four, 4 * args.batch))
    metrics["1_n_actor_calls_async"] = metric(
        ops, secs, "calls/s",
        what="one client, 4 actors (2 per worker, so 2 share a worker's single "
             "actor thread); %d small_value() calls on each per round, then all "
             ".result()ed" % args.batch)
    note("1_n_actor_calls_async")

    shared = ("the 4 actors of 1_n (2 per worker), created by the main "
              "process and shared: each client process rebuilds them as "
              "Actor(SmallActor, worker address, key)")
    metrics["n_n_actor_calls_async"] = run_multi(
        cluster.scheduler_address, args, "calls", four, unit="calls/s",
        what="%d client processes at once (file barrier), each: %d small_value() "
             "calls per round spread round-robin over %s, then all .result()ed; "
             "total calls over the span from the first start to the last end"
             % (args.clients, args.batch, shared))
    note("n_n_actor_calls_async")

    metrics["n_n_actor_calls_with_arg_async"] = run_multi(
        cluster.scheduler_address, args, "calls_with_arg", four, unit="calls/s",
        what="as n_n_actor_calls_async, each call small_arg(f) where f is the "
             "client's Future of client.scatter([list(range(100))]) (one scatter "
             "per client process, before the barrier); Dask passes "
             "a Future argument of an actor method unresolved, so small_arg "
             "fetches it with f.result() on the worker before len()")
    note("n_n_actor_calls_with_arg_async")

    n = args.many_actors
    print("dask many_actors: creating %d actors" % n, file=sys.stderr)
    t0 = time.perf_counter()
    many = make_actors(n)
    calls = [a.small_value() for a in many]
    for c in calls:
        c.result()
    secs = time.perf_counter() - t0
    metrics["many_actors"] = metric(
        n, secs, "actors/s", value=round(secs, 6), count=n,
        actors_per_s=round(n / secs, 3),
        what="seconds to create %d actors (client.submit(SmallActor, actor=True), "
             "round-robin over the 2 workers, then gathered as Actor proxies) "
             "and call small_value() once on each, waiting for all%s"
             % (n, "" if n == 10000 else "; rayd's figure is for 10,000 actors"))
    note("many_actors")
    client.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--client-of", dest="scheduler", help=argparse.SUPPRESS)
    ap.add_argument("--barrier", help=argparse.SUPPRESS)
    ap.add_argument("--actor-workload", choices=["calls", "calls_with_arg"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--only-actors", action="store_true",
                    help="skip the task metrics")
    ap.add_argument("--many-actors", type=int, default=10000,
                    help="actors created by many_actors (rayd uses 10000)")
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

    def task_metrics():
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

    if not args.only_actors:
        task_metrics()
    client.close()

    actor_metrics(cluster, args, metrics, note)
    cluster.close()
    print(json.dumps({
        "workload": "dask-micro",
        "distributed_version": distributed.__version__,
        "python_version": sys.version.split()[0],
        "cluster": "LocalCluster(n_workers=2, threads_per_worker=1, processes=True)",
        "seconds": args.seconds,
        "batch": args.batch,
        "clients": args.clients,
        "actor_client": "Client(direct_to_workers=True)",
        "metrics": metrics,
    }))


if __name__ == "__main__":
    main()
