#!/usr/bin/env python3
"""Turns the JSON of a rayd-bench run into the summary table of
bench/RESULTS.md: one row per figure with its peer (the same run's Dask,
Slurm, TCP ping-pong or memcpy), the ratio, the target and whether it is met.

    ./build/bench/rayd-bench all --compare-dask > all.json
    python3 bench/results_table.py all.json          # Markdown on stdout

The input is what rayd-bench prints: the array of `all`, one object, or
several objects one after another (e.g. `micro` and `jobs --compare-slurm`
appended to one file; a later run of a workload replaces an earlier one). A figure whose workload is absent is left out; a
target whose figure could not be read says "no data". The "met" column
comes from the bench's own verdict in the JSON (its `met` fields and the
micro `targets`), so the table and the JSON cannot disagree.

Standard library only.
"""

import argparse
import json
import sys


def load(path):
    """Every JSON object in the file (arrays flattened)."""
    text = open(path, encoding="utf-8").read() if path != "-" else sys.stdin.read()
    dec = json.JSONDecoder()
    objs, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        value, i = dec.raw_decode(text, i)
        objs.extend(value if isinstance(value, list) else [value])
    return [o for o in objs if isinstance(o, dict)]


def get(j, *keys):
    """j[k1][k2]... or None."""
    for k in keys:
        if not isinstance(j, dict) or k not in j:
            return None
        j = j[k]
    return j


def num(x, digits=None, unit=""):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if digits is None:
        a = abs(x)
        digits = 0 if a >= 100 else (1 if a >= 10 else (2 if a >= 1 else 3))
    s = f"{x:,.{digits}f}"
    return s + (" " + unit if unit else "")


def ratio(a, b, digits=None, suffix="×"):
    if a is None or b is None or not b:
        return "–"
    return num(a / b, digits) + suffix


def met(v):
    if v is None:
        return "no data"
    return "yes" if v else "**no**"


class table:
    def __init__(self):
        self.rows = []

    def row(self, figure, value, peer="", ratio_="", target="", met_=""):
        self.rows.append((figure, value, peer or "", ratio_ or "", target or "", met_ or ""))

    def markdown(self):
        out = ["| figure | rayd | peer (same run) | ratio | target | met |",
               "|---|---|---|---|---|---|"]
        for r in self.rows:
            out.append("| " + " | ".join(r) + " |")
        return "\n".join(out)


def cluster_start(t, j):
    rd = get(j, "total_ms", "median")
    dk = get(j, "dask", "ready_ms", "median")
    t.row("cluster-start: head + 2 workers ALIVE (median)", num(rd, 1, "ms"),
          f"Dask LocalCluster(2) {num(dk, 0, 'ms')}" if dk else "",
          ratio(dk, rd, 1, "× faster") if dk else "", "≤ 500 ms", met(j.get("met")))


def join(t, j):
    n = j.get("nodes") or get(j, "options", "nodes") or 100
    t.row(f"join: {n} workers ALIVE", num(j.get("join_ms"), 0, "ms"), "", "", "≤ 5 s",
          met(j.get("join_met")))
    rss = get(j, "head_rss_mib")
    peak = None
    if isinstance(rss, dict):
        vals = [v for v in (rss.get("idle_start"), rss.get("idle_end")) if v is not None]
        peak = max(vals) if vals else None
    t.row(f"join: head RSS, {n + 1} nodes", num(peak, 1, "MiB"), "", "", "≤ 100 MiB",
          met(j.get("rss_met")))
    t.row(f"join: head CPU idle, {n + 1} nodes", num(j.get("head_idle_cpu_pct"), 1, "%"),
          "", "", "≤ 5 % of a core", met(j.get("cpu_met")))


def kv(t, j):
    c = j.get("clients")
    p50 = get(j, "latency_us", "p50")
    value = f"{num(j.get('writes_per_s'), 0)}/s (p50 {num(p50, 0)} µs)"
    if c == 16:
        t.row("kv: durable writes, 16 clients", value, "", "", "≥ 20,000/s", met(j.get("met")))
    else:
        t.row(f"kv: durable writes, {c} client(s)", value)


def failure_detect(t, j):
    for sig, goal in (("sigkill", "< 100 ms"), ("sigstop", "< 3000 ms")):
        m = get(j, sig, "latency_ms", "median")
        t.row(f"failure-detect: {sig.upper()} → DEAD (median)", num(m, 1, "ms"), "", "",
              goal, met(get(j, sig, "met")))


def jobs(t, j):
    done = get(j, "submit_to_succeeded_ms", "median")
    sd = get(j, "slurm", "submit_to_done_ms", "median")
    t.row("jobs: submit → SUCCEEDED (`true`, median)", num(done, 1, "ms"),
          f"Slurm sbatch {num(sd, 0, 'ms')}" if sd else "",
          ratio(sd, done, 0, "× faster") if sd else "", "≤ 50 ms", met(j.get("met")))
    run = get(j, "submit_to_running_ms", "median")
    sr = get(j, "slurm", "submit_to_running_ms", "median")
    t.row("jobs: submit → RUNNING (median)", num(run, 1, "ms"),
          f"Slurm {num(sr, 0, 'ms')}" if sr else "",
          ratio(sr, run, 0, "× faster") if sr else "")
    dr = get(j, "queued_drain", "jobs_per_s")
    n = get(j, "queued_drain", "jobs")
    sl = get(j, "slurm", "drain_seq", "jobs_per_s") or get(j, "slurm", "drain_array",
                                                            "jobs_per_s")
    t.row(f"jobs: {num(n, 0)} queued 1-CPU jobs drained", num(dr, 0, "jobs/s"),
          f"Slurm {num(sl, 1, 'jobs/s')}" if sl else "",
          ratio(dr, sl, 0) if sl else "")


def micro(t, j):
    m = j.get("metrics", {})
    tg = j.get("targets", {})
    dask_ran = isinstance(j.get("dask"), dict) and "metrics" in j["dask"]

    def v(k, *path):
        return get(m, k, *(path or ("value",)))

    def tmet(key):
        return met(get(tg, key, "met"))

    def vs_dask(k):
        d = v(k, "dask")
        r = v(k, "ratio_rayd_over_dask")
        return (f"Dask {num(d)}" if d is not None else ("Dask: not run" if not dask_ran else ""),
                (num(r, 0) + "×") if r is not None else "")

    pp = v("tcp_pingpong")
    t.row("micro: tcp_pingpong (2 processes, blocking)", num(pp, 0, "round trips/s"),
          "", "", "the floor")
    sync = v("single_client_tasks_sync")
    d, r = vs_dask("single_client_tasks_sync")
    t.row("micro: single_client_tasks_sync", num(sync, 0, "/s"), f"tcp_pingpong {num(pp, 0)}",
          ratio(sync, pp, 2), "≥ 0.6× tcp_pingpong",
          tmet("single_client_tasks_sync_ge_0.6x_tcp_pingpong"))
    if d:
        t.row("micro: single_client_tasks_sync vs Dask", num(sync, 0, "/s"), d, r, "≥ 50×",
              tmet("single_client_tasks_sync_ge_50x_dask"))
    a = v("single_client_tasks_async")
    t.row("micro: single_client_tasks_async", num(a, 0, "/s"), "", "", "≥ 100,000/s",
          tmet("single_client_tasks_async_ge_100k"))
    if d:
        d, r = vs_dask("single_client_tasks_async")
        t.row("micro: single_client_tasks_async vs Dask", num(a, 0, "/s"), d, r, "≥ 50×",
              tmet("single_client_tasks_async_ge_50x_dask"))
    mc = v("multi_client_tasks_async")
    per = v("multi_client_tasks_async", "per_client_rate") or []
    dper = v("multi_client_tasks_async", "dask_per_client_rate") or []
    d, r = vs_dask("multi_client_tasks_async")
    if dper:
        d += " (per driver " + ", ".join(num(x, 0) for x in dper) + ")"
    t.row(f"micro: multi_client_tasks_async ({len(per) or '?'} drivers)",
          num(mc, 0, "/s") + (" (per driver " + ", ".join(num(x, 0) for x in per) + ")"
                              if per else ""),
          d, r, "≥ 50× Dask", tmet("multi_client_tasks_async_ge_50x_dask"))
    b = v("single_client_tasks_and_get_batch")
    d, r = vs_dask("single_client_tasks_and_get_batch")
    t.row("micro: single_client_tasks_and_get_batch", num(b, 1, "batches/s"), d, r,
          "≥ 50× Dask", tmet("single_client_tasks_and_get_batch_ge_50x_dask"))
    for k, goal in (("single_client_put_calls", "single_client_put_calls_ge_100k"),
                    ("single_client_get_calls", "single_client_get_calls_ge_100k")):
        d, r = vs_dask(k)
        t.row(f"micro: {k} (node's shared store)", num(v(k), 0, "/s"), d, r, "≥ 100,000/s",
              tmet(goal))
    for k in ("single_client_put_calls_inline", "single_client_get_calls_inline"):
        if k in m:
            t.row(f"micro: {k} (kept in the driver)", num(v(k), 0, "/s"))
    pg = v("single_client_put_gigabytes")
    mc = v("single_client_put_gigabytes", "memcpy_gbps")
    t.row("micro: single_client_put_gigabytes (128 MiB puts into the store)",
          num(pg, 2, "GB/s"), f"memcpy {num(mc, 1, 'GB/s')}" if mc else "",
          ratio(pg, mc, 3), "≥ 0.5× memcpy",
          tmet("single_client_put_gigabytes_ge_0.5x_memcpy"))
    ot = v("object_transfer_gbps")
    cold = v("object_transfer_gbps", "cold_gbps")
    ok = v("object_transfer_gbps", "checksum_ok")
    t.row("micro: object_transfer_gbps (1 GiB node → node, every byte checksummed), warm "
          "median", num(ot, 2, "GB/s"), "", "", "≥ 1 GB/s", tmet("object_transfer_gbps_ge_1"))
    t.row("micro: object_transfer_gbps, cold (first sample, fresh memory)",
          num(cold, 2, "GB/s"), "", "", "", "")
    if ok is not None and not ok:
        t.row("micro: object_transfer checksum", "**mismatch**")
    actors(t, m, tg, v, tmet, vs_dask, pp)


def actors(t, m, tg, v, tmet, vs_dask, pp):
    """The actor rows (issue 9), Ray's names; Dask actors in the same run."""
    if "1_1_actor_calls_sync" not in m:
        return
    s = v("1_1_actor_calls_sync")
    d, r = vs_dask("1_1_actor_calls_sync")
    t.row("micro: 1_1_actor_calls_sync", num(s, 0, "/s"), f"tcp_pingpong {num(pp, 0)}",
          ratio(s, pp, 2), "≥ 0.6× tcp_pingpong",
          tmet("1_1_actor_calls_sync_ge_0.6x_tcp_pingpong"))
    if d:
        t.row("micro: 1_1_actor_calls_sync vs Dask", num(s, 0, "/s"), d, r)
    goals = {"1_1_actor_calls_async": ("≥ 150,000/s", "1_1_actor_calls_async_ge_150k"),
             "n_n_actor_calls_async": ("≥ 150,000/s", "n_n_actor_calls_async_ge_150k")}
    for k in ("1_1_actor_calls_async", "1_1_actor_calls_concurrent", "1_n_actor_calls_async",
              "n_n_actor_calls_async", "n_n_actor_calls_with_arg_async"):
        if k not in m:
            continue
        d, r = vs_dask(k)
        target, key = goals.get(k, ("", None))
        extra = ""
        per = v(k, "per_client_rate")
        if per:
            extra = f" ({len(per)} drivers)"
        t.row(f"micro: {k}{extra}", num(v(k), 0, "/s"), d, r, target,
              tmet(key) if key else "")
    if "many_actors" in m:
        secs = v("many_actors")
        rss = v("many_actors", "head_rss_mib")
        dk = v("many_actors", "dask_seconds")
        dc = v("many_actors", "dask_count")
        rr = v("many_actors", "ratio_rayd_over_dask_actors_per_s")
        peer = f"Dask {num(dk, 1, 's')} for {num(dc, 0)}" if dk is not None else ""
        t.row("micro: many_actors (create 10,000 and call each once)", num(secs, 2, "s"), peer,
              (num(rr, 0) + "× the actors/s") if rr is not None else "", "≤ 2 s",
              tmet("many_actors_le_2s"))
        t.row("micro: many_actors: head RSS after", num(rss, 1, "MiB"), "", "", "≤ 150 MiB",
              tmet("many_actors_head_rss_le_150mib"))


HANDLERS = {"cluster-start": cluster_start, "join": join, "kv": kv,
            "failure-detect": failure_detect, "jobs": jobs, "micro": micro}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="rayd-bench output ('-': stdin)")
    args = ap.parse_args()
    # One figure per workload (kv: per client count): a later object of the
    # same kind replaces an earlier one, so runs can be appended to one file.
    latest = {}
    for j in load(args.json):
        latest[(j.get("workload"), j.get("clients") if j.get("workload") == "kv" else None)] = j
    objs = list(latest.values())
    t = table()
    commits, busy, errors = set(), [], []
    for j in objs:
        w = j.get("workload", "?")
        b = j.get("build") or {}
        commits.add(b.get("commit", "unknown") + ("+dirty" if b.get("dirty") else ""))
        if "background_busy_pct" in j:
            busy.append(f"{w} {num(j['background_busy_pct'], 0)} %")
        if "error" in j:
            errors.append(f"{w}: {j['error']}")
            continue
        if w in HANDLERS:
            HANDLERS[w](t, j)
    print(f"Commit: {', '.join(sorted(commits)) or 'unknown'}. "
          f"Background load before each workload (`background_busy_pct`): "
          f"{', '.join(busy) or 'not recorded'}.")
    print()
    print(t.markdown())
    for e in errors:
        print(f"\nError: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
