"""iotgw benchmarks: prints one line per figure (see docs/benchmarks.md). Run via deploy/bench.

Figures, each measured against a reference taken in the same run:
  replay   `iotgw replay` of a JSON capture with raw storage, vs a parse-only pass (C)
  e2e      `iotgw run` behind a real mosquitto, vs mosquitto_sub receiving the same stream at
           the same time; and a bare paho MQTTAsync subscriber vs mosquitto_sub
  rss      peak RSS of `iotgw run` at two series counts and the cost of one more series
  latency  publish-to-alert latency at a fixed offered rate
  storage  the storage layer alone (bench_storage, C): insert rate through st_db vs plain SQLite,
           one-series query latency in a 50M-row database, bytes on disk per reading

Nothing here asserts a timing: a run fails only when data goes missing or a tool fails.
"""
import argparse
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(ROOT, "tests/integration"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Broker, Gateway, wait_for  # noqa: E402
from mqtt_raw import RawPublisher, publish_packet  # noqa: E402

import paho.mqtt.client as paho  # noqa: E402


def tool(env, *defaults):
    """The path in $env, else the first default (relative to the repo) that exists."""
    paths = [os.environ[env]] if os.environ.get(env) else [os.path.join(ROOT, d) for d in defaults]
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    sys.exit(f"bench: {' or '.join(paths)} not found or not executable (build it, or set {env})")


CHILDREN = []  # every long-running process started, stopped at exit whatever happens


def track(popen):
    CHILDREN.append(popen)
    return popen


def stop_children():
    for p in reversed(CHILDREN):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def emit(line):
    print(line, flush=True)


def note(line):
    print("  " + line, file=sys.stderr, flush=True)


def fmt_rate(r):
    return f"{r:.0f}"


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# ---- stored-row counting ---------------------------------------------------------------------

def stored_rows(db):
    """Raw readings committed (one read snapshot). Internal tables: readings_recent holds the
    rows not yet merged into readings; the v_readings view would cost a full join."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return -1
    try:
        for q in ("SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM readings_recent)",
                  "SELECT count(*) FROM readings"):
            try:
                return con.execute(q).fetchone()[0]
            except sqlite3.OperationalError:
                continue
        return -1
    finally:
        con.close()


def wait_stored(db, n, t0, deadline_s, proc=None):
    """Polls the row count until n; returns the monotonic time it was first seen. The poll
    interval shrinks as the count approaches n (each count costs a few ms of CPU)."""
    last_t, last_c = t0, 0
    while True:
        now = time.monotonic()
        c = stored_rows(db)
        if c >= n:
            return now, c
        if now - t0 > deadline_s or (proc is not None and proc.poll() is not None):
            return None, c
        rate = (c - last_c) / (now - last_t) if c > last_c and now > last_t else 0
        left = (n - c) / rate if rate > 0 else 0.25
        last_t, last_c = now, max(c, 0)
        time.sleep(min(0.25, max(0.01, left / 3)))


# ---- broker helpers ---------------------------------------------------------------------------

class SysMonitor:
    """Keeps the latest $SYS values of the broker (sys_interval 1)."""

    def __init__(self, port):
        try:
            self.c = paho.Client(paho.CallbackAPIVersion.VERSION1, client_id="bench-sys")
        except AttributeError:
            self.c = paho.Client(client_id="bench-sys")
        self.vals = {}
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("$SYS/broker/#", 0)
        self.c.loop_start()

    def _on(self, c, u, m):
        self.vals[m.topic] = m.payload.decode(errors="replace")

    def get(self, key, default="0"):
        return self.vals.get("$SYS/broker/" + key, default)

    def dropped(self):
        # mosquitto 2.0.11 does not publish this counter while it is zero.
        return int(self.get("publish/messages/dropped", "0"))

    def wait_tick(self):
        """Waits for one more $SYS round, so the counters cover what happened before."""
        up = self.get("uptime", "")
        wait_for(lambda: self.get("uptime", "") != up, 5, "$SYS update")

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


BROKER_EXTRA = []


def start_broker(tmp, extra=()):
    b = Broker(tmp)
    with open(b.conf, "a") as f:
        f.write("sys_interval 1\n")
        for line in list(extra) + BROKER_EXTRA:
            f.write(line + "\n")
    b.start()
    track(b.proc)
    return b


def start_gateway(tmp, cfg, name):
    gw = Gateway(tmp, cfg, name=name)
    try:
        gw.start()
    finally:
        if gw.proc is not None:
            track(gw.proc)
    return gw


def gateway_config(port, db, qos=1, rules=True, **over):
    cfg = harness.default_config(port, db)
    cfg["mqtt"]["qos"] = qos
    cfg["subscriptions"] = [{"topic": "sensors/+/+", "sensor": "{1}", "metric": "{2}"}]
    cfg["pipeline"] = {"overflow": "block"}
    if not rules:
        cfg["rules"] = []
    cfg.update(over)
    return cfg


class Proc:
    """A child process whose exit time is recorded by a waiting thread."""

    def __init__(self, argv, stdout, stdin=subprocess.DEVNULL):
        self.p = track(subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, stdin=stdin))
        self.end = None
        self.cpu = 0.0
        self.err = b""
        self.t = threading.Thread(target=self._wait, daemon=True)
        self.t.start()

    def _wait(self):
        self.err = self.p.stderr.read()
        try:
            _, status, ru = os.wait4(self.p.pid, 0)
            self.cpu = ru.ru_utime + ru.ru_stime
            self.p.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by Popen (killed on a failure path)
            self.p.wait()
        self.end = time.monotonic()

    def join(self, timeout):
        self.t.join(timeout)
        if self.t.is_alive():
            self.p.kill()
            self.t.join(5)
            return False
        return self.p.returncode == 0


def start_mosquitto_sub(port, tmp, n, qos, name):
    """mosquitto_sub counting n messages into a file. Ready once it printed the retained
    marker of its own ready topic (so it counts n + 1)."""
    ready = f"bench/ready/{name}-{time.monotonic_ns()}"
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-r", "-t", ready, "-m", "r"],
                   check=True)
    out_path = os.path.join(tmp, f"{name}.out")
    out = open(out_path, "wb")
    sp = Proc(["mosquitto_sub", "-p", str(port), "-q", str(qos), "-t", "sensors/#", "-t", ready,
               "-C", str(n + 1)], stdout=out)
    wait_for(lambda: os.path.getsize(out_path) > 0 or sp.end is not None, 10,
             "mosquitto_sub to subscribe")
    if sp.end is not None:
        sys.exit(f"bench: mosquitto_sub exited: {sp.err.decode(errors='replace')}")
    out.close()
    # Remove the retained marker (nobody else subscribes to it).
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-r", "-n", "-t", ready],
                   check=True)
    return sp


def start_paho_sub(port, n, qos):
    argv = [tool("BENCH_PAHO_SUB", "build/tests/bench/bench_paho_sub"), "127.0.0.1", str(port),
            "sensors/#", str(qos), str(n), "30"]
    ps = track(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    line = ps.stdout.readline()
    if line.strip() != "ready":
        sys.exit(f"bench: bench_paho_sub did not start: {line!r} {ps.stderr.read()}")
    res = {}

    def waiter():
        res["out"] = ps.stdout.read()
        ps.wait()
        res["end"] = time.monotonic()
    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    return ps, t, res


# ---- publishers -------------------------------------------------------------------------------

def publish_mosquitto_pub(port, n, series, concurrency, tmp):
    """QoS0: `mosquitto_pub -l` reads one message a line from stdin, all on one topic, so each
    series is one mosquitto_pub process; `concurrency` of them run at a time."""
    per = n // series
    path = os.path.join(tmp, "lines.txt")
    with open(path, "w") as f:
        f.write("".join(f"{20 + (i % 1000) / 100:.2f}\n" for i in range(per)))
    todo = list(range(series))
    lock = threading.Lock()
    errors = []

    def runner():
        while True:
            with lock:
                if not todo:
                    return
                s = todo.pop()
            with open(path, "rb") as f:
                r = subprocess.run(["mosquitto_pub", "-p", str(port), "-l", "-q", "0",
                                    "-t", f"sensors/s{s:05d}/temp"], stdin=f,
                                   stderr=subprocess.PIPE)
            if r.returncode != 0:
                errors.append(r.stderr.decode(errors="replace"))
    threads = [threading.Thread(target=runner) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("bench: mosquitto_pub failed: " + errors[0])
    return per * series


def publish_raw(port, n, series, qos, name="bench-pub"):
    """Round-robin over `series` topics from one raw-socket connection (QoS0: prebuilt packets
    in chunks; QoS1: a window of 10000 unacknowledged)."""
    pub = RawPublisher(port, f"{name}-{os.getpid()}")
    topics = [f"sensors/s{s:06d}/temp".encode() for s in range(series)]
    if qos == 0:
        chunk = 20000
        for start in range(0, n, chunk):
            pub.send_qos0(b"".join(
                publish_packet(topics[i % series], f"{20 + (i % 1000) / 100:.2f}")
                for i in range(start, min(n, start + chunk))))
    else:
        pub.send_qos1((topics[i % series], f"{20 + (i % 1000) / 100:.2f}") for i in range(n))
        pub.wait_acked()
    pub.close()
    return n


# ---- 1. replay -------------------------------------------------------------------------------

def gen_capture(path, n, series):
    with open(path, "w") as f:
        buf = []
        for i in range(n):
            s = i % series
            v = 20 + ((i * 7919) % 5000) / 1000
            ts = 1700000000000 + i * 10
            buf.append(f'sensors/s{s:05d} {{"ts":{ts},"temperature":{v:.2f}}}\n')
            if len(buf) >= 50000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))


def bench_replay(a, tmp):
    iotgw = tool("IOTGW_BIN", "build/iotgw", "build/gateway/iotgw")
    parse_only = tool("BENCH_PARSE_ONLY", "build/tests/bench/bench_parse_only")
    cap = os.path.join(tmp, "capture.txt")
    gen_capture(cap, a.replay_n, a.replay_series)
    cfg_path = os.path.join(tmp, "replay.json")
    with open(cfg_path, "w") as f:
        json.dump({"subscriptions": [{"topic": "sensors/+", "sensor": "{1}", "metric": ""}],
                   "storage": {"raw": True}}, f)
    po = subprocess.run([parse_only, cap, str(a.runs)], capture_output=True, text=True)
    m = re.search(r"(\d+) msgs/s", po.stdout)
    if po.returncode != 0 or not m:
        sys.exit(f"bench: bench_parse_only failed: {po.stdout}{po.stderr}")
    parse_rate = int(m.group(1))
    rates, cpus = [], []
    for r in range(a.runs):
        db = os.path.join(tmp, f"replay{r}.db")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rp = subprocess.run([iotgw, "replay", "-c", cfg_path, "-d", db, cap],
                            capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        m = re.search(r"replay: \d+ lines, (\d+) readings, (\d+) stored.*\(([\d.]+) readings/s\)",
                      rp.stderr)
        if rp.returncode != 0 or not m:
            sys.exit(f"bench: iotgw replay failed:\n{rp.stderr}")
        if int(m.group(2)) != a.replay_n or stored_rows(db) != a.replay_n:
            sys.exit(f"bench: replay stored {m.group(2)} of {a.replay_n} readings")
        rates.append(float(m.group(3)))
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        try:
            unmerged = harness.db_rows(db, "SELECT count(*) FROM readings_recent")[0][0]
        except sqlite3.OperationalError:
            unmerged = "?"
        note(f"replay run {r + 1}: {rates[-1]:.0f} readings/s, CPU {cpus[-1]:.2f} s, "
             f"{unmerged} rows left in readings_recent (merged into the index later)")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
    best = max(rates)
    i = rates.index(best)
    med = sorted(rates)[len(rates) // 2]
    emit(f"replay: {fmt_rate(best)} readings/s (best of {a.runs}, median {fmt_rate(med)}; "
         f"{a.replay_n} readings, {a.replay_series} series, JSON, raw storage; "
         f"CPU {cpus[i]:.2f} s = {a.replay_n / cpus[i]:.0f} readings/CPU-s); "
         f"parse-only {parse_rate} msgs/s; ratio {best / parse_rate:.2f} "
         f"(target >= 300000 readings/s and ratio >= 0.5)")


# ---- 2. end to end through mosquitto ---------------------------------------------------------

def run_publisher(a, port, n, qos, tmp):
    if qos == 0 and not a.raw_qos0:
        return publish_mosquitto_pub(port, n, a.e2e_series, a.pub_procs, tmp)
    return publish_raw(port, n, a.e2e_series, qos)


def e2e_pass_gateway(a, tmp, broker, mon, n, qos, tag):
    port = broker.port
    db = os.path.join(tmp, f"e2e-{tag}.db")
    gw = start_gateway(tmp, gateway_config(port, db, qos=qos), f"gw-{tag}")
    ms = start_mosquitto_sub(port, tmp, n, qos, f"msub-{tag}")
    cpu0, bcpu0 = proc_cpu(gw.proc.pid), proc_cpu(broker.proc.pid)
    cs0, th0 = ctx_switches(gw.proc.pid), thread_cpu(gw.proc.pid)
    t0 = time.monotonic()
    n = run_publisher(a, port, n, qos, tmp)
    t_pub = time.monotonic()
    t_gw, c = wait_stored(db, n, t0, a.deadline, gw.proc)
    cpu1, cs1, th1 = proc_cpu(gw.proc.pid), ctx_switches(gw.proc.pid), thread_cpu(gw.proc.pid)
    threads = sorted((th1[t] - th0.get(t, 0) for t in th1), reverse=True)
    ok_sub = ms.join(a.deadline)
    bcpu1 = proc_cpu(broker.proc.pid)
    mon.wait_tick()
    rc = gw.stop()
    st = gw.final_stats()
    if t_gw is None or not ok_sub or rc != 0:
        sys.exit(f"bench: e2e {tag}: gateway stored {c}/{n} (exit {rc}), mosquitto_sub "
                 f"{'ok' if ok_sub else 'incomplete: ' + ms.err.decode(errors='replace')}; "
                 f"log {gw.log_path}")
    note(f"e2e {tag}: wall s: publisher {t_pub - t0:.2f}, gateway {t_gw - t0:.2f}, "
         f"mosquitto_sub {ms.end - t0:.2f}; CPU s: gateway {cpu1 - cpu0:.2f}, mosquitto_sub "
         f"{ms.cpu:.2f}, broker {bcpu1 - bcpu0:.2f}; gateway context switches "
         f"{(cs1 - cs0) / n:.2f} per message; gateway threads CPU s "
         f"{' '.join(f'{x:.2f}' for x in threads if x > 0)}")
    return {"n": n, "gw": n / (t_gw - t0), "sub": n / (ms.end - t0), "pub": n / (t_pub - t0),
            "stats": st, "dropped": mon.dropped(), "gw_cpu": cpu1 - cpu0}


def e2e_pass_paho(a, tmp, broker, mon, n, qos, tag):
    port = broker.port
    ps, pt, res = start_paho_sub(port, n, qos)
    ms = start_mosquitto_sub(port, tmp, n, qos, f"msub-{tag}")
    bcpu0 = proc_cpu(broker.proc.pid)
    t0 = time.monotonic()
    n = run_publisher(a, port, n, qos, tmp)
    t_pub = time.monotonic()
    ok_sub = ms.join(a.deadline)
    pt.join(a.deadline)
    bcpu1 = proc_cpu(broker.proc.pid)
    m = re.search(r"cpu ([\d.]+) s", res.get("out", ""))
    note(f"e2e {tag}: wall s: publisher {t_pub - t0:.2f}, paho-sub {res.get('end', t0) - t0:.2f}, "
         f"mosquitto_sub {(ms.end or t0) - t0:.2f}; CPU s: paho-sub {m.group(1) if m else '?'}, "
         f"mosquitto_sub {ms.cpu:.2f}, broker {bcpu1 - bcpu0:.2f}")
    if not ok_sub or ps.returncode != 0:
        sys.exit(f"bench: e2e {tag}: mosquitto_sub ok={ok_sub}, bench_paho_sub exit "
                 f"{ps.returncode}: {res.get('out')}")
    return {"paho": n / (res["end"] - t0), "sub": n / (ms.end - t0)}


def ctx_switches(pid):
    """Context switches of all threads of a process (voluntary + involuntary)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k.endswith("ctxt_switches"):
                        total += int(v)
        except OSError:
            pass
    return total


def thread_cpu(pid):
    """CPU seconds of each thread of a process, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


def proc_cpu(pid):
    """CPU seconds (user + system) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_e2e(a, tmp):
    b = start_broker(tmp)
    mon = SysMonitor(b.port)
    try:
        for qos, n in ((0, a.e2e_n), (1, a.e2e_n_qos1)):
            how = ("raw-socket publisher" if qos == 1 or a.raw_qos0 else
                   f"mosquitto_pub -l, {a.pub_procs} at a time")
            r = e2e_pass_gateway(a, tmp, b, mon, n, qos, f"q{qos}")
            st = r["stats"]
            emit(f"e2e qos{qos}: gateway {fmt_rate(r['gw'])} msgs/s; mosquitto_sub "
                 f"{fmt_rate(r['sub'])} msgs/s (simultaneous, same broker); ratio "
                 f"{r['gw'] / r['sub']:.2f} (target >= 0.9); {r['n']} msgs, {a.e2e_series} "
                 f"series, {how} offering {fmt_rate(r['pub'])} msgs/s; gateway CPU "
                 f"{r['gw_cpu']:.2f} s; stored {st.get('stored')}, ingest_dropped "
                 f"{st.get('ingest_dropped')}; broker dropped {r['dropped']}")
            p = e2e_pass_paho(a, tmp, b, mon, n, qos, f"p{qos}")
            emit(f"e2e qos{qos} reference: paho MQTTAsync counting subscriber "
                 f"{fmt_rate(p['paho'])} msgs/s; mosquitto_sub {fmt_rate(p['sub'])} msgs/s "
                 f"(simultaneous); ratio {p['paho'] / p['sub']:.2f}; broker dropped "
                 f"{mon.dropped()}")
    finally:
        mon.close()
        b.stop()


# ---- 3. peak RSS ------------------------------------------------------------------------------

def read_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def rss_run(a, tmp, port, series, per_series):
    db = os.path.join(tmp, f"rss-{series}.db")
    gw = start_gateway(tmp, gateway_config(port, db), f"gw-rss-{series}")
    pid = gw.proc.pid
    peak = [0]
    done = threading.Event()

    def sampler():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], read_status(pid)["VmRSS"])
            except (OSError, KeyError):
                return
            done.wait(0.05)
    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    n = series * per_series
    t0 = time.monotonic()
    publish_raw(port, n, series, 0, name=f"bench-rss-{series}")
    t_end, c = wait_stored(db, n, t0, a.deadline, gw.proc)
    st = read_status(pid)
    done.set()
    t.join()
    rc = gw.stop()
    if t_end is None or rc != 0:
        sys.exit(f"bench: rss {series}: gateway stored {c}/{n} (exit {rc}); log {gw.log_path}")
    mb = 1024 * 1024
    # Anonymous memory is the gateway's (heap, stacks, SQLite's page cache); file-backed pages
    # are mostly the shared libraries' code (libcrypto, libsqlite3, paho, libc).
    print(f"  rss {series} series at the end: {st['VmRSS'] / mb:.1f} MB = anonymous "
          f"{st['RssAnon'] / mb:.1f} MB + file-backed {st['RssFile'] / mb:.1f} MB", flush=True)
    return st["VmHWM"], max(peak[0], st["VmRSS"]), gw.final_stats().get("series")


def bench_rss(a, tmp):
    b = start_broker(tmp)
    try:
        lo, hi = a.rss_series
        h_lo, m_lo, s_lo = rss_run(a, tmp, b.port, lo, a.rss_per_series)
        h_hi, m_hi, s_hi = rss_run(a, tmp, b.port, hi, a.rss_per_series)
    finally:
        b.stop()
    # VmHWM is maintained lazily by the kernel and can trail a sampled VmRSS: the peak is the
    # larger of the two.
    r_lo, r_hi = max(h_lo, m_lo), max(h_hi, m_hi)
    mb = 1024 * 1024
    per = (r_hi - r_lo) / (hi - lo)
    emit(f"rss: peak {r_lo / mb:.1f} MB at {lo} series (VmHWM {h_lo / mb:.1f}, max sampled "
         f"VmRSS {m_lo / mb:.1f}; target <= 10 MB at 1000), {r_hi / mb:.1f} MB at {hi} series "
         f"(VmHWM {h_hi / mb:.1f}, sampled {m_hi / mb:.1f}); per further series "
         f"({r_hi} - {r_lo}) / {hi - lo} = {per:.0f} bytes (target <= 400); "
         f"{a.rss_per_series} readings a series, series seen {s_lo} and {s_hi}")


# ---- 4. publish-to-alert latency -------------------------------------------------------------

LAT_LIMIT = 1e15  # a raise carries +send time in epoch us, a clear -send time


def latency_publisher(port, rate, seconds, every, series):
    """Runs in its own process (no GIL shared with the receiver). Message i goes to series
    i % series with a normal value; every `every`-th message raises (value = send time in
    epoch microseconds, above the rule's limit) and the next one, on the same series,
    clears (value = minus the send time)."""
    pub = RawPublisher(port, f"bench-lat-pub-{os.getpid()}")
    total = int(rate * seconds)
    topics = [f"sensors/l{s:05d}/temp" for s in range(series)]
    raises = 0
    t0 = time.monotonic()
    i = 0
    while i < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        if i >= due:
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            continue
        while i < due:
            if i % every == 0 and i + 1 < total:
                topic = topics[i % series]
                pub.send_qos0(publish_packet(topic, str(time.time_ns() // 1000)))
                pub.send_qos0(publish_packet(topic, "-" + str(time.time_ns() // 1000)))
                raises += 1
                i += 2
            else:
                pub.send_qos0(publish_packet(topics[i % series], "21.5"))
                i += 1
    elapsed = time.monotonic() - t0
    pub.close()
    print(json.dumps({"sent": i, "raises": raises, "rate": i / elapsed}), flush=True)


def bench_latency(a, tmp):
    # mosquitto leaves Nagle's algorithm on by default; with QoS0 input the gateway sends
    # nothing back, so small segments wait for its delayed ACK. Both are measured.
    for label, extra in (("broker defaults", []),
                         ("broker set_tcp_nodelay true", ["set_tcp_nodelay true"])):
        latency_run(a, tmp, label, extra)


def latency_run(a, tmp, label, extra):
    b = start_broker(tmp, extra)
    db = os.path.join(tmp, f"latency-{len(extra)}.db")
    cfg = gateway_config(b.port, db, rules=False)
    cfg["rules"] = [{"name": "lat", "metric": "temp", "above": LAT_LIMIT, "severity": "warning"}]
    gw = start_gateway(tmp, cfg, f"gw-lat-{len(extra)}")
    lat, lock = [], threading.Lock()

    def on_message(c, u, m):
        now = time.time_ns() // 1000
        try:
            ev = json.loads(m.payload)
            with lock:
                lat.append(now - abs(int(ev["value"])))
        except (ValueError, KeyError, TypeError):
            pass
    try:
        c = paho.Client(paho.CallbackAPIVersion.VERSION1, client_id="bench-lat-sub")
    except AttributeError:
        c = paho.Client(client_id="bench-lat-sub")
    subscribed = threading.Event()
    c.on_message = on_message
    c.on_subscribe = lambda *x: subscribed.set()
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    c.subscribe("iotgw/alerts/#", 1)
    try:
        wait_for(subscribed.is_set, 10, "SUBACK")
        pr = subprocess.run([sys.executable, __file__, "_latency_pub", str(b.port),
                             str(a.lat_rate), str(a.lat_seconds), str(a.lat_every), "1000"],
                            capture_output=True, text=True)
        if pr.returncode != 0:
            sys.exit(f"bench: latency publisher failed: {pr.stderr}")
        res = json.loads(pr.stdout)
        want = 2 * res["raises"]
        try:
            wait_for(lambda: len(lat) >= want, 30, f"{want} alerts")
        except AssertionError:
            pass
    finally:
        c.loop_stop()
        c.disconnect()
        rc = gw.stop()
        b.stop()
    with lock:
        xs = sorted(lat)
    if not xs or rc != 0:
        sys.exit(f"bench: latency: no alerts received (gateway exit {rc}); log {gw.log_path}")

    def pct(v, p):
        return v[min(len(v) - 1, int(p / 100 * len(v)))] / 1000
    # The first leg: the reading's time stamp is the gateway's arrival time (ms resolution).
    legs = sorted(r[0] for r in harness.db_rows(
        db, "SELECT ts_ms * 1000 - abs(value) FROM v_alerts WHERE abs(value) > ?", (LAT_LIMIT,)))
    leg = (f"; publish-to-ingest leg (ms resolution) p50 {pct(legs, 50):.1f} ms, "
           f"p99 {pct(legs, 99):.1f} ms"
           if legs else "")
    emit(f"latency ({label}): {len(xs)} alerts ({want - len(xs)} missing) at {a.lat_rate} "
         f"msgs/s offered (achieved {res['rate']:.0f}, 1 raise + 1 clear per {a.lat_every} "
         f"msgs, {a.lat_seconds} s): p50 {pct(xs, 50):.2f} ms, p99 {pct(xs, 99):.2f} ms, max "
         f"{xs[-1] / 1000:.2f} ms (target p99 <= 5 ms){leg}")


# ---- 5. storage -------------------------------------------------------------------------------

def bench_storage(a, tmp):
    """bench_storage prints its own figures; each line gets the prefix "storage "."""
    exe = tool("BENCH_STORAGE", "build/tests/bench/bench_storage")
    argv = [exe, "--dir", tmp]
    if a.smoke:
        argv.append("--smoke")
    if a.storage_rows:
        argv += ["--rows", str(a.storage_rows)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    track(p)
    for line in p.stdout:
        emit("storage " + line.rstrip("\n"))
    if p.wait() != 0:
        sys.exit(f"bench: bench_storage failed (exit {p.returncode})")


# ---- main -------------------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_latency_pub":
        port, rate, secs, every, series = sys.argv[2:7]
        latency_publisher(int(port), float(rate), float(secs), int(every), int(series))
        return
    ap = argparse.ArgumentParser(prog="deploy/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes: proves the scripts work, the figures mean nothing")
    ap.add_argument("--only", default="replay,e2e,rss,latency,storage",
                    help="comma-separated subset of replay,e2e,rss,latency,storage")
    ap.add_argument("--storage-rows", type=int, default=0, metavar="N",
                    help="readings in the storage query database (default 50000000)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--runs", type=int, default=3, help="replay runs (best is reported)")
    ap.add_argument("--raw-qos0", action="store_true",
                    help="QoS0 e2e: one raw-socket publisher instead of mosquitto_pub -l")
    ap.add_argument("--broker-option", action="append", default=[], metavar="LINE",
                    help="extra mosquitto.conf line, e.g. 'set_tcp_nodelay true' (repeatable)")
    a = ap.parse_args()
    BROKER_EXTRA.extend(a.broker_option)
    if a.smoke:
        a.replay_n, a.replay_series, a.runs = 20000, 200, 1
        a.e2e_n, a.e2e_n_qos1, a.e2e_series, a.pub_procs = 20000, 5000, 20, 4
        a.rss_series, a.rss_per_series = (100, 1000), 2
        a.lat_rate, a.lat_seconds, a.lat_every = 1000, 2, 25
        a.deadline = 120
    else:
        a.replay_n, a.replay_series = 1000000, 10000
        a.e2e_n, a.e2e_n_qos1, a.e2e_series, a.pub_procs = 1000000, 200000, 100, 4
        a.rss_series, a.rss_per_series = (1000, 100000), 3
        a.lat_rate, a.lat_seconds, a.lat_every = 10000, 25, 25
        a.deadline = 600
    harness.IOTGW = tool("IOTGW_BIN", "build/iotgw", "build/gateway/iotgw")
    only = set(a.only.split(","))
    unknown = only - {"replay", "e2e", "rss", "latency", "storage"}
    if unknown:
        ap.error(f"--only: unknown {','.join(sorted(unknown))}")
    tmp = tempfile.mkdtemp(prefix="iotgw-bench-")
    note(f"bench: {harness.IOTGW}, temp {tmp}, load average {loadavg()}, "
         f"{os.cpu_count()} CPUs{' (smoke sizes)' if a.smoke else ''}")
    try:
        for name, fn in (("replay", bench_replay), ("e2e", bench_e2e), ("rss", bench_rss),
                         ("latency", bench_latency), ("storage", bench_storage)):
            if name in only:
                fn(a, tmp)
    finally:
        stop_children()
        if a.keep:
            note(f"bench: kept {tmp}")
        else:
            subprocess.run(["rm", "-rf", tmp])
    note(f"bench: done, load average {loadavg()}")


if __name__ == "__main__":
    # A SIGTERM (e.g. a ctest timeout) unwinds like Ctrl-C, so that the broker and the gateway
    # are stopped and the temporary directory is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
