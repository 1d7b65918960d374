#!/usr/bin/env python3
"""Job submission latency of a private single-node Slurm, for comparison
with `rayd-bench jobs`. Loopback only, standard library only.

    python3 bench/slurm_jobs.py [--runs 20] [--queued 1000] [--keep-temp]

Needs Debian's `slurm-wlm` and `munge` packages (slurmctld, slurmd, munged,
sbatch, squeue, scontrol, sinfo). Everything lives in one temp dir: a fresh
munge key and munged with its own socket, a slurm.conf naming this host
(NodeAddr/SlurmctldHost 127.0.0.1, free ports), slurmctld and slurmd in the
foreground as our children. Nothing in /etc or /run is touched and no system
service is used. Prints one JSON object on stdout; progress goes to stderr.

Measured (every client command runs with SLURM_CONF pointing at our conf):
  submit_to_done_ms     `sbatch --parsable --wrap true` then `scontrol show
                        job -o ID` polled until the job's script has ended
                        (the criterion `sbatch --wait` uses); the poll is the
                        true end-to-end latency a user sees, `sbatch --wait`
                        itself sleeps 2 s, 8 s, ... between its checks
  submit_to_running_ms  same polls, first one that no longer says PENDING
  queued_drain          --queued sequential sbatch calls, then wait for all
  queued_drain_array    one `sbatch --array=1-N` of the same size
  sbatch_wait_ms        a few plain `sbatch --wait` calls, for reference
  srun_ms               blocking `srun -N1 -n1 true` (interactive path:
                        allocated inside the RPC, no scheduler pass)

Slurm starts batch jobs only from a scheduling pass in slurmctld's
background thread, which wakes once a second and runs the pass at most every
batch_sched_delay seconds (default 3), so with stock settings a lone sbatch
job waits up to ~3 s before it runs. The default here is Slurm's stock
scheduler configuration; `--sched-params batch_sched_delay=0` gives the
tuned variant (~1 s). SchedulerParameters end up in the JSON.

Cleanup (always, also on Ctrl-C/SIGTERM/exceptions): the script makes itself
a child subreaper (prctl), so slurmstepd -- which slurmd double-forks and
which would otherwise be reparented to PID 1 -- stays a descendant of this
process; every descendant (slurmctld, slurmd, munged, slurmstepd, job tasks)
gets SIGTERM by PID, then SIGKILL after a few seconds, and is reaped. The
temp dir is removed unless --keep-temp.
"""

import argparse
import atexit
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}
# JobState is COMPLETING while the script has ended but the step/epilog
# cleanup is still running; `sbatch --wait` already treats that as finished
# (its base state is COMPLETED), so "done" does too.
DONE = TERMINAL | {"COMPLETING"}

T_START = time.perf_counter()


def log(*a):
    print(f"[slurm_jobs {time.perf_counter() - T_START:7.2f}s]", *a,
          file=sys.stderr, flush=True)


def summary(xs, with_samples=True):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0}
    d = {"n": len(xs), "median": round(statistics.median(xs), 1),
         "min": round(min(xs), 1), "max": round(max(xs), 1),
         "mean": round(statistics.mean(xs), 1)}
    if with_samples:
        d["samples"] = [round(x, 1) for x in xs]
    return d


def busy_pct(seconds=0.5):
    """Machine-wide CPU busy % over `seconds` (same idea as rayd-bench)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1)


# ---------------------------------------------------------------- processes

def proc_table():
    """{pid: (ppid, state)} from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        out[int(name)] = (int(rest[1]), rest[0])
    return out


def descendants(root, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def set_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except Exception:
        return False


class Cluster:
    def __init__(self, args):
        self.args = args
        self.tmp = None
        self.procs = {}          # name -> Popen (daemons we hold)
        self.env = None
        self.conf = None
        self.node = socket.gethostname().split(".")[0]
        self.cleaned = False
        self.subreaper = set_subreaper()
        self.reaped_orphans = 0
        self._last_reap = 0.0

    # ---- zombies of orphans that were reparented to us (subreaper)
    def reap(self, force=False):
        now = time.monotonic()
        if not force and now - self._last_reap < 1.0:
            return
        self._last_reap = now
        held = {p.pid for p in self.procs.values()}
        me = os.getpid()
        for pid, (ppid, state) in proc_table().items():
            if ppid == me and state == "Z" and pid not in held:
                try:
                    os.waitpid(pid, os.WNOHANG)
                    self.reaped_orphans += 1
                except ChildProcessError:
                    pass

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    # ---- client commands
    def run(self, *cmd, timeout=60, check=True):
        r = subprocess.run(list(cmd), env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} -> rc {r.returncode}: "
                               f"{r.stderr.strip()[-500:]}")
        return r

    def log_tails(self, n=25):
        out = []
        for name in ("munged.log", "slurmctld.log", "slurmctld.stderr",
                     "slurmd.log", "slurmd.stderr"):
            p = self.path(name)
            if self.tmp and os.path.exists(p):
                with open(p, errors="replace") as f:
                    lines = f.read().splitlines()[-n:]
                out.append(f"--- {name} (last {len(lines)} lines)\n" +
                           "\n".join(lines))
        return "\n".join(out)

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with rc {p.returncode}")

    # ---- setup
    def start(self):
        a = self.args
        for exe in ("munged", "slurmctld", "slurmd", "sbatch", "srun",
                    "squeue", "scontrol", "sinfo"):
            if not shutil.which(exe):
                raise RuntimeError(f"{exe} not found (apt-get install -y "
                                   "--no-install-recommends slurm-wlm munge)")
        self.tmp = tempfile.mkdtemp(prefix="slurm-bench-")
        # munged refuses a socket whose directory path is not executable by
        # all ("execute permissions for all required"), and refuses key/log
        # dirs writable by group/other: 0711, owned by us.
        os.chmod(self.tmp, 0o711)
        uid, gid = os.getuid(), os.getgid()
        user = pwd.getpwuid(uid).pw_name
        for d in ("state", "spool"):
            os.mkdir(self.path(d), 0o700)

        key = self.path("munge.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        os.write(fd, os.urandom(1024))
        os.close(fd)
        os.chown(key, uid, gid)    # munged runs as us

        sock = self.path("munge.socket")
        mlog = open(self.path("munged.log"), "ab")
        log("starting munged in", self.tmp)
        self.procs["munged"] = subprocess.Popen(
            ["munged", "--foreground", f"--socket={sock}",
             f"--key-file={key}", f"--pid-file={self.path('munged.pid')}",
             f"--log-file={self.path('munged.log')}",
             f"--seed-file={self.path('munged.seed')}", "--num-threads=4"],
            stdin=subprocess.DEVNULL, stdout=mlog, stderr=mlog,
            start_new_session=True)
        mlog.close()
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("munged socket did not appear")
            time.sleep(0.02)

        # Two distinct free ports: hold both sockets until both are chosen.
        socks = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ctld_port, slurmd_port = (s.getsockname()[1] for s in socks)
        for s in socks:
            s.close()

        plugstack = self.path("plugstack.conf")
        open(plugstack, "w").close()   # isolate from /etc/slurm/plugstack.conf
        cpus = len(os.sched_getaffinity(0))     # what `nproc` prints
        max_jobs = max(10000, 4 * a.queued + 4 * a.runs + 100)
        max_array = max(1001, a.queued + 1)
        lines = [
            "ClusterName=raydbench",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            f"StateSaveLocation={self.path('state')}",
            f"SlurmdSpoolDir={self.path('spool')}",
            f"SlurmctldPidFile={self.path('slurmctld.pid')}",
            f"SlurmdPidFile={self.path('slurmd.pid')}",
            f"SlurmctldLogFile={self.path('slurmctld.log')}",
            f"SlurmdLogFile={self.path('slurmd.log')}",
            f"PlugStackConfig={plugstack}",
            "MailProg=/bin/true",       # default /bin/mail is not installed
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobContainerType=job_container/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"MaxJobCount={max_jobs}",
            f"MaxArraySize={max_array}",
        ]
        if a.sched_params:
            lines.append(f"SchedulerParameters={a.sched_params}")
        lines += [
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} "
            "State=UNKNOWN",
            f"PartitionName=bench Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP",
        ]
        self.conf = self.path("slurm.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_",
                                         "SINFO_", "SCONTROL_"))}
        self.env["SLURM_CONF"] = self.conf

        for name, cmd in (
                ("slurmctld", ["slurmctld", "-D", "-f", self.conf]),
                ("slurmd", ["slurmd", "-D", "-f", self.conf,
                            "-N", self.node])):
            log("starting", name)
            err = open(self.path(f"{name}.stderr"), "ab")
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, cwd=self.tmp, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err, start_new_session=True)
            err.close()

        deadline = time.monotonic() + a.start_timeout
        state = None
        while True:
            self.check_alive()
            r = self.run("sinfo", "-h", "-n", self.node, "-o", "%t",
                         timeout=15, check=False)
            state = r.stdout.strip() if r.returncode == 0 else None
            if state == "idle":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"node not idle after {a.start_timeout}s "
                                   f"(sinfo state {state!r}, "
                                   f"{r.stderr.strip()[-200:]!r})")
            time.sleep(0.05)
        return ctld_port, slurmd_port

    # ---- teardown
    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        # SIGINT/SIGTERM during cleanup must not abort it halfway.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                signal.signal(s, signal.SIG_IGN)
            except (ValueError, OSError):
                pass
        me = os.getpid()

        def alive(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    s = f.read()
                return s[s.rfind(")") + 2] != "Z"
            except OSError:
                return False

        def stop(pids, grace):
            pids = [p for p in pids if alive(p)]
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                self.reap(force=True)
                for pr in self.procs.values():
                    pr.poll()
                time.sleep(0.05)
            for p in pids:
                if alive(p):
                    log(f"SIGKILL {p}")
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

        ctld = self.procs.get("slurmctld")
        slurmd = self.procs.get("slurmd")
        munged = self.procs.get("munged")
        if ctld and ctld.poll() is None and self.env:
            try:   # cancel whatever is left so slurmd can tear steps down
                self.run("scancel", "--full", "-u",
                         pwd.getpwuid(os.getuid()).pw_name,
                         timeout=5, check=False)
            except Exception:
                pass
        # Job step daemons: descendants of slurmd, plus (since slurmd
        # double-forks slurmstepd and we are the subreaper) every other
        # descendant of ours that is not one of the three daemons.
        daemon_pids = {p.pid for p in self.procs.values()}
        table = proc_table()
        steps = set(descendants(slurmd.pid, table) if slurmd else [])
        if self.subreaper:
            steps |= set(descendants(me, table))
        steps -= daemon_pids
        daemons = [p.pid for p in (ctld, slurmd) if p]
        if daemons:
            log("stopping slurmctld/slurmd", daemons)
            stop(daemons, 5)
        # slurmctld's own helper (slurmscriptd) and anything that appeared.
        table = proc_table()
        for p in (ctld, slurmd):
            if p:
                steps |= set(descendants(p.pid, table))
        if self.subreaper:
            steps |= set(descendants(me, table))
        steps -= daemon_pids
        if munged:
            steps.discard(munged.pid)
        steps = {p for p in steps if alive(p)}
        if steps:
            names = []
            for p in sorted(steps):
                try:
                    with open(f"/proc/{p}/comm") as f:
                        names.append(f"{p}:{f.read().strip()}")
                except OSError:
                    pass
            log(f"stopping {len(steps)} leftover processes: {names}")
            stop(sorted(steps), 3)
        if munged:
            stop([munged.pid], 3)
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.reap(force=True)
        if self.tmp and os.path.isdir(self.tmp):
            if self.args.keep_temp:
                log("kept", self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------ measure

def job_state(c, jid):
    r = c.run("scontrol", "show", "job", "-o", jid, check=False, timeout=30)
    if r.returncode != 0:
        # Purged (MinJobAge) or unknown: it is certainly not queued any more.
        if "Invalid job id" in r.stderr:
            return "PURGED"
        raise RuntimeError(f"scontrol show job {jid}: {r.stderr.strip()}")
    for tok in r.stdout.split():
        if tok.startswith("JobState="):
            return tok.split("=", 1)[1]
    raise RuntimeError(f"no JobState in {r.stdout[:200]!r}")


def wait_idle(c, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        c.check_alive()
        q = c.run("squeue", "-h", "-o", "%i").stdout.split()
        st = c.run("sinfo", "-h", "-n", c.node, "-o", "%t").stdout.strip()
        if not q and st == "idle":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster not idle: {len(q)} jobs, node {st}")
        c.reap()
        time.sleep(0.05)


def one_job(c, poll_s, name="lat"):
    """Return (sbatch_ms, running_ms, done_ms, cleared_ms, final_state)."""
    t0 = time.perf_counter()
    r = c.run("sbatch", "--parsable", "-J", name, "--wrap", "true",
              "-o", "/dev/null")
    t_sub = time.perf_counter()
    jid = r.stdout.strip().split(";")[0]
    running = done = None
    while True:
        st = job_state(c, jid)
        t = (time.perf_counter() - t0) * 1000
        if running is None and st != "PENDING":
            running = t
        if done is None and (st in DONE or st == "PURGED"):
            done = t
        if st in TERMINAL or st == "PURGED":
            return (t_sub - t0) * 1000, running, done, t, st
        if t > 600_000:
            raise RuntimeError(f"job {jid} still {st} after 600 s")
        c.check_alive()
        time.sleep(poll_s)


def drain(c, n, array, poll_s):
    name = "drain_array" if array else "drain_seq"
    t0 = time.perf_counter()
    if array:
        c.run("sbatch", "--parsable", "-J", name, f"--array=1-{n}",
              "--wrap", "true", "-o", "/dev/null", timeout=120)
    else:
        for i in range(n):
            c.run("sbatch", "--parsable", "-J", name, "--wrap", "true",
                  "-o", "/dev/null")
            if (i + 1) % 200 == 0:
                log(f"  submitted {i + 1}/{n}")
    t_sub = time.perf_counter()
    last_log = last_tally = t_sub
    final = {}    # job id -> final state

    def tally():
        # Finished records vanish after MinJobAge (300 s), so collect the
        # final states every 60 s instead of only at the end.
        for line in c.run("squeue", "-h", "-r", "-t", "all", "-n", name,
                          "-o", "%i %T", timeout=60).stdout.splitlines():
            jid, st = line.split()
            if st in TERMINAL:
                final[jid] = st

    while True:
        left = len(c.run("squeue", "-h", "-r", "-o", "%i",
                         timeout=60).stdout.split())
        if left == 0:
            break
        now = time.perf_counter()
        if now - last_log > 10:
            log(f"  {left} jobs not finished yet")
            last_log = now
        if now - last_tally > 60:
            tally()
            last_tally = now
        if now - t0 > 7200:
            raise RuntimeError(f"{left} jobs still queued after 2 h")
        c.check_alive()
        c.reap()
        time.sleep(poll_s)
    t_done = time.perf_counter()
    tally()
    states = {}
    for st in final.values():
        states[st] = states.get(st, 0) + 1
    if len(final) < n:
        states["not_seen"] = n - len(final)
    total = t_done - t0
    d = {"jobs": n,
         "submit_s": round(t_sub - t0, 3),
         "submit_jobs_per_s": round(n / max(1e-9, t_sub - t0), 1),
         "total_s": round(total, 3),
         "jobs_per_s": round(n / total, 1),
         "final_states": states}
    if array:
        d["submission"] = f"one `sbatch --array=1-{n} --wrap true`"
    else:
        d["submission"] = f"{n} sequential `sbatch --parsable --wrap true`"
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--queued", type=int, default=1000)
    ap.add_argument("--keep-temp", action="store_true")
    ap.add_argument("--poll-ms", type=float, default=5.0,
                    help="sleep between status polls of one job "
                         "(each poll is itself one scontrol RPC)")
    ap.add_argument("--wait-runs", type=int, default=3,
                    help="extra samples of plain `sbatch --wait` (0 = none)")
    ap.add_argument("--srun-runs", type=int, default=10,
                    help="extra samples of blocking `srun -N1 -n1 true` "
                         "(0 = none)")
    ap.add_argument("--no-array", action="store_true",
                    help="skip the job-array drain")
    ap.add_argument("--sched-params", default="",
                    help="SchedulerParameters for slurm.conf; default: "
                         "none (Slurm's stock scheduler settings), e.g. "
                         "'batch_sched_delay=0' for a tuned comparison")
    ap.add_argument("--start-timeout", type=float, default=60)
    args = ap.parse_args()

    c = Cluster(args)
    atexit.register(c.cleanup)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    # Also when started with SIGINT ignored (e.g. `cmd &` in a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        bg = busy_pct()
        t0 = time.perf_counter()
        try:
            ctld_port, slurmd_port = c.start()
        except Exception as e:
            tails = c.log_tails() if c.tmp else ""
            print(json.dumps({"system": "slurm",
                              "error": f"{e}\n{tails}"}), flush=True)
            return 1
        start_s = time.perf_counter() - t0
        version = c.run("sinfo", "--version").stdout.strip()
        log(f"{version} up in {start_s:.2f}s (node {c.node}, slurmctld "
            f"127.0.0.1:{ctld_port}, slurmd 127.0.0.1:{slurmd_port})")
        sched = c.run("scontrol", "show", "config").stdout
        sched_line = next((l.split("=", 1)[1].strip()
                           for l in sched.splitlines()
                           if l.startswith("SchedulerParameters")), None)

        poll_s = args.poll_ms / 1000
        # One warm-up job, not reported (first RPCs, plugin loading).
        one_job(c, poll_s)
        wait_idle(c)
        sb, run_ms, done_ms, cleared_ms, finals = [], [], [], [], {}
        poll_cost = []
        for i in range(args.runs):
            s, r, d, cl, st = one_job(c, poll_s)
            sb.append(s), run_ms.append(r), done_ms.append(d)
            cleared_ms.append(cl)
            finals[st] = finals.get(st, 0) + 1
            log(f"run {i + 1}/{args.runs}: sbatch {s:.1f} ms, running "
                f"{r:.1f} ms, done {d:.1f} ms ({st})")
            c.reap()
        for _ in range(5):
            t = time.perf_counter()
            c.run("scontrol", "show", "job", "-o", "1", check=False)
            poll_cost.append((time.perf_counter() - t) * 1000)

        wait_ms = []
        for i in range(args.wait_runs):
            wait_idle(c)
            t = time.perf_counter()
            c.run("sbatch", "--wait", "--wrap", "true", "-o", "/dev/null",
                  timeout=600)
            wait_ms.append((time.perf_counter() - t) * 1000)
            log(f"sbatch --wait {i + 1}/{args.wait_runs}: "
                f"{wait_ms[-1]:.1f} ms")

        # srun allocates at RPC time (no scheduler pass) and blocks until
        # the step has ended: Slurm's interactive fast path, for reference.
        srun_ms = []
        for i in range(args.srun_runs):
            wait_idle(c)
            t = time.perf_counter()
            c.run("srun", "-J", "srun", "-N1", "-n1", "true", timeout=600)
            srun_ms.append((time.perf_counter() - t) * 1000)
            log(f"srun {i + 1}/{args.srun_runs}: {srun_ms[-1]:.1f} ms")

        drains = {}
        if args.queued > 0:
            wait_idle(c)
            log(f"queued drain: {args.queued} sequential sbatch")
            drains["queued_drain"] = drain(c, args.queued, False, 0.05)
            log("  ->", drains["queued_drain"])
            if not args.no_array:
                wait_idle(c)
                log(f"queued drain: array of {args.queued}")
                drains["queued_drain_array"] = drain(c, args.queued, True,
                                                     0.05)
                log("  ->", drains["queued_drain_array"])

        ncpu = len(os.sched_getaffinity(0))
        notes = [
            "submit_to_done_ms: t0 just before `sbatch --parsable --wrap true "
            "-o /dev/null`, then `scontrol show job -o ID` polled every "
            f"{args.poll_ms:g} ms (+ ~{statistics.median(poll_cost):.0f} ms "
            "per poll) until JobState is COMPLETING or a final state -- the "
            "test `sbatch --wait` uses; resolution is one poll",
            "submit_to_running_ms: first poll whose JobState is no longer "
            "PENDING (an upper bound within one poll; a very short job may "
            "be seen COMPLETING directly)",
            "submit_to_cleared_ms: until JobState is final without the "
            "COMPLETING flag (step torn down, core free again)",
            "sbatch_wait_ms: plain `sbatch --wait` for reference; sbatch "
            "sleeps 2 s, then 8 s, ... between its own status checks, so it "
            "is quantised and not used as the latency",
            "srun_ms: blocking `srun -N1 -n1 true` (allocation at submit "
            "time plus one job step; returns when the step has ended) -- "
            "Slurm's interactive path, not a batch submission",
            f"{ncpu} CPUs, SelectTypeParameters=CR_Core: at most "
            f"{ncpu} `true` jobs run at once, so a drain is bounded "
            "by cores x scheduling passes per second",
            "SchedulerParameters: " + (args.sched_params or
                                       "none set (stock defaults; "
                                       "batch_sched_delay=3 s, sched_interval"
                                       "=60 s)")
            + f"; slurmctld reports {sched_line!r}",
            "sbatch jobs are started by slurmctld's scheduling pass, not "
            "inside the submit RPC; the pass runs from a background thread "
            "that wakes once a second, at most every batch_sched_delay "
            "seconds (stock 3): expect ~3 s stock, ~1 s with "
            "batch_sched_delay=0",
            "slurmctld and slurmd listen on 0.0.0.0 (Slurm 22.05 has no "
            "bind-address setting); all traffic goes to 127.0.0.1",
            "one unreported warm-up job before the runs; queued drains wait "
            "until squeue lists no job; client commands are separate "
            "processes (fork+exec each)",
        ]
        out = {
            "system": "slurm",
            "version": version,
            "method": "sbatch --parsable, then poll `scontrol show job -o ID`"
                      " until COMPLETING/final",
            "submit_to_done_ms": summary(done_ms),
            "submit_to_running_ms": summary(run_ms),
            "submit_to_cleared_ms": summary(cleared_ms, False),
            "sbatch_return_ms": summary(sb, False),
            "sbatch_wait_ms": summary(wait_ms),
            "srun_ms": summary(srun_ms),
            "poll_cost_ms": round(statistics.median(poll_cost), 1),
            "final_states": finals,
            **drains,
            "cluster_start_s": round(start_s, 2),
            "background_busy_pct": bg,
            "config": {"node": c.node, "cpus": ncpu,
                       "select": "select/cons_tres CR_Core",
                       "scheduler": "sched/backfill",
                       "scheduler_parameters": args.sched_params or None,
                       "proctrack": "proctrack/linuxproc",
                       "task": "task/none"},
            "notes": notes,
        }
        print(json.dumps(out), flush=True)
        log(f"total {time.perf_counter() - T_START:.1f}s")
        return 0
    except (KeyboardInterrupt, SystemExit) as e:
        rc = 130 if isinstance(e, KeyboardInterrupt) else (e.code or 1)
        log(f"interrupted (exit {rc})")
        print(json.dumps({"system": "slurm",
                          "error": f"interrupted by signal (exit {rc})"}),
              flush=True)
        return rc
    except Exception as e:
        tails = c.log_tails() if c.tmp else ""
        print(json.dumps({"system": "slurm",
                          "error": f"{type(e).__name__}: {e}\n{tails}"}),
              flush=True)
        return 1
    finally:
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())
