"""Readers of the history while the gateway writes it: the Debian sqlite3 shell (as
docs/history.md shows it: `sqlite3 -readonly`, plus `.timeout`), `iotgw query` and `iotgw alerts`
run again and again on the public views during a write load, and must see nothing but clean,
consistent snapshots: exit 0, well-formed output, counts that never go down and never exceed what
was written, no "database is locked", "busy" or "malformed". Then the write-ahead log: a reader
that holds a read transaction makes it grow; once released, the log must shrink back to the
journal_size_limit (64 MiB) instead of growing without bound.

Write loads: `iotgw replay` of generated captures into one file, one replay after another
(replay drives the writer harder than a broker can on this machine), and a shorter live run of
`iotgw run` behind a real mosquitto. Nothing here asserts a time."""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (IOTGW, Broker, Client, Gateway, TmpDir, db_rows,  # noqa: E402
                     default_config, wait_for)

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
T0 = 1700000000000
SERIES = 60          # sensors s000..s059, metric temp; every 3rd also reports vib (scored)
JOURNAL_LIMIT = 64 * 1024 * 1024  # st_db.c: PRAGMA journal_size_limit
HELD_CHUNKS = 5  # replays of 60000 readings while a reader holds its snapshot (> 64 MiB of log)

CONFIG = {
    "subscriptions": [{"topic": "sensors/+/+", "sensor": "{1}", "metric": "{2}"}],
    "windows": {"sizes": [{"size": "1m"}]},
    "rules": [
        {"name": "hot", "metric": "temp", "above": 30, "clear_below": 28, "severity": "warning"},
        {"name": "odd", "metric": "vib", "anomaly": 0.99999},
    ],
}

# One consistent snapshot per invocation; each line: a label and integers (csv mode).
SNAPSHOT_SQL = (
    "BEGIN;"
    "SELECT 'readings', count(*), count(anomaly) FROM v_readings;"
    "SELECT 'per_series', coalesce(sum(n), 0), count(*) FROM"
    " (SELECT count(*) AS n FROM v_readings GROUP BY sensor, metric);"
    "SELECT 'summaries', count(*), coalesce(sum(count), 0) FROM v_summaries;"
    "SELECT 'alerts', count(*), coalesce(max(id), 0) FROM v_alerts;"
    "SELECT 'active', count(*), count(DISTINCT sensor) FROM v_active_alerts;"
    "COMMIT;")
LABELS = ["readings", "per_series", "summaries", "alerts", "active"]
# A cheap one, so that many invocations open and close the file while replays do the same.
LIGHT_SQL = ("SELECT 'series', count(*), coalesce(max(ts_ms), 0) FROM v_readings"
             " WHERE sensor = 's001' AND metric = 'temp' AND ts_ms >= 0;"
             "SELECT 'alerts', count(*), coalesce(max(id), 0) FROM v_alerts;")
LIGHT_LABELS = ["series", "alerts"]


def capture(path, first, n, step_ms):
    """Lines first..first+n-1 of the endless capture: plain numbers (their time comes from
    --start and --step), temp crossing 30 and back every 40 rounds, vib with a rare spike."""
    with open(path, "w") as f:
        buf = []
        for g in range(first, first + n):
            s, rnd = g % SERIES, g // SERIES
            if s % 3 == 2:
                v = 1.0 + ((g * 7919) % 97) / 1000 + (4.0 if rnd % 500 == 499 else 0.0)
                buf.append(f"sensors/s{s:03d}/vib {v:.3f}\n")
            else:
                v = 22.0 + ((g * 7919) % 300) / 100 + (10.0 if rnd % 40 == 0 else 0.0)
                buf.append(f"sensors/s{s:03d}/temp {v:.2f}\n")
        f.write("".join(buf))


class Load:
    """Replays consecutive chunks of the capture into one database, one process at a time.
    `bound` is the number of readings of every chunk whose replay has started: no reader may
    ever count more."""

    def __init__(self, tmp, db, chunk, step_ms=250):
        self.tmp, self.db, self.chunk, self.step = tmp, db, chunk, step_ms
        self.cfg = os.path.join(tmp, "replay.json")
        with open(self.cfg, "w") as f:
            json.dump(dict(CONFIG, storage={"path": db}), f)
        self.cap = os.path.join(tmp, "chunk.txt")
        self.lines = 0   # replayed and finished
        self.bound = 0
        self.lock = threading.Lock()

    def replay(self, n_chunks):
        for _ in range(n_chunks):
            capture(self.cap, self.lines, self.chunk, self.step)
            with self.lock:
                self.bound += self.chunk
            r = subprocess.run([IOTGW, "replay", "-q", "-c", self.cfg, "--start",
                                str(T0 + self.lines * self.step), "--step", str(self.step),
                                self.cap], capture_output=True, text=True, timeout=300)
            assert r.returncode == 0 and r.stderr == "", f"replay failed: {r.stderr}"
            self.lines += self.chunk

    def get_bound(self):
        with self.lock:
            return self.bound


class Reader(threading.Thread):
    """Runs argv again and again until stopped; keeps (returncode, stdout, stderr, bound after)."""

    def __init__(self, name, argv, bound):
        super().__init__(name=name, daemon=True)
        self.argv, self.bound = argv, bound
        self.stop = threading.Event()
        self.runs = []

    def run(self):
        while not self.stop.is_set():
            r = subprocess.run(self.argv, capture_output=True, text=True, timeout=120)
            self.runs.append((r.returncode, r.stdout, r.stderr, self.bound()))


def sqlite3_reader(name, db, bound, timeout=True, light=False):
    cmd = [SQLITE3, "-readonly", "-bail", "-batch", "-csv"]
    if timeout:
        cmd += ["-cmd", ".timeout 10000"]
    return Reader(name, cmd + [db, LIGHT_SQL if light else SNAPSHOT_SQL], bound)


def parse_snapshot(out, labels=LABELS):
    """{label: [ints]} from the csv lines of SNAPSHOT_SQL; AssertionError when malformed."""
    rows = list(csv.reader(io.StringIO(out)))
    assert [r[0] for r in rows] == labels, f"unexpected output: {out!r}"
    return {r[0]: [int(x) for x in r[1:]] for r in rows}


def window_total(out):
    """Sum of the count column of `iotgw query --window ... -f csv`."""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.startswith("sensor,metric,start_ms,start,end_ms,count,"), f"bad header: {out[:80]!r}"
    return sum(int(r["count"]) for r in rows)


class ReadersDuringWrites(unittest.TestCase):
    def check_readers(self, db, readers, final):
        """The assertions shared by both loads. final: the snapshot after the load."""
        for rd in readers:
            self.assertGreaterEqual(len(rd.runs), 2, f"{rd.name} ran only {len(rd.runs)} times")
            last = None
            for rc, out, err, bound in rd.runs:
                self.assertEqual((rc, err), (0, ""), f"{rd.name}: exit {rc}: {err}")
                if rd.name == "sqlite3-light":
                    snap = parse_snapshot(out, LIGHT_LABELS)
                    self.assertLessEqual(snap["series"][0], bound)
                    self.assertLessEqual(snap["alerts"][0], snap["alerts"][1])
                    if last is not None:
                        for k in LIGHT_LABELS:
                            self.assertGreaterEqual(snap[k], last[k], f"{rd.name}: {k} went down")
                    last = snap
                elif rd.name.startswith("sqlite3"):
                    snap = parse_snapshot(out)
                    n, scored = snap["readings"]
                    self.assertEqual(snap["per_series"][0], n, f"{rd.name}: inconsistent {snap}")
                    self.assertLessEqual(snap["per_series"][1], SERIES)
                    self.assertLessEqual(scored, n)
                    self.assertLessEqual(snap["alerts"][0], snap["alerts"][1])
                    self.assertLessEqual(snap["active"][1], SERIES)
                    self.assertLessEqual(n, bound, f"{rd.name} counted more than was written")
                    if last is not None:
                        for k in ("readings", "summaries", "alerts"):
                            self.assertGreaterEqual(snap[k], last[k], f"{rd.name}: {k} went down")
                    last = snap
                elif rd.name == "query":
                    n = window_total(out)
                    self.assertLessEqual(n, bound, "iotgw query counted more than was written")
                    self.assertGreaterEqual(n, last or 0, "iotgw query: the count went down")
                    last = n
                else:  # iotgw alerts --active -f json
                    active = json.loads(out)
                    self.assertIsInstance(active, list)
                    for a in active:
                        self.assertEqual(a["state"], "raised")
                        self.assertLessEqual(a["id"], final["alerts"][1])
        # The end state: every reading, each exactly once, and an intact file.
        self.assertEqual(
            subprocess.run([SQLITE3, "-readonly", "-cmd", ".timeout 10000", db,
                            "PRAGMA integrity_check"], capture_output=True, text=True).stdout,
            "ok\n")

    def observe_no_timeout(self, rd):
        """The shell without .timeout: what history.md's examples, as written, would meet.
        Only busy/locked errors are acceptable; report how many."""
        errs = [err for rc, out, err, _ in rd.runs if rc != 0 or err]
        for err in errs:
            self.assertRegex(err, r"(database is locked|busy)", err)
            self.assertNotIn("malformed", err)
        for rc, out, err, _ in rd.runs:
            if rc == 0 and not err:
                parse_snapshot(out, LIGHT_LABELS)
        print(f"\n  sqlite3 without .timeout: {len(errs)} of {len(rd.runs)} invocations failed "
              f"{sorted(set(e.strip() for e in errs))}", file=sys.stderr)

    def start_readers(self, db, bound, n_sqlite=3):
        readers = [sqlite3_reader(f"sqlite3-{i}", db, bound) for i in range(n_sqlite)]
        readers.append(sqlite3_reader("sqlite3-light", db, bound, light=True))
        readers.append(Reader("query", [IOTGW, "query", "--db", db, "--window", "3650d",
                                        "--source", "raw", "-f", "csv", "-n", "100000000"], bound))
        readers.append(Reader("alerts", [IOTGW, "alerts", "--db", db, "--active", "-f", "json",
                                         "-n", "100000000"], bound))
        bare = sqlite3_reader("bare", db, bound, timeout=False, light=True)
        for rd in readers + [bare]:
            rd.start()
        return readers, bare

    def stop_readers(self, readers):
        for rd in readers:
            rd.stop.set()
        for rd in readers:
            rd.join(180)
            self.assertFalse(rd.is_alive(), f"{rd.name} did not finish")

    def snapshot(self, db):
        r = subprocess.run([SQLITE3, "-readonly", "-bail", "-batch", "-csv", "-cmd",
                            ".timeout 10000", db, SNAPSHOT_SQL], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        return parse_snapshot(r.stdout)

    def test_replay_load(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "h.db")
            load = Load(tmp, db, chunk=60000)
            load.replay(1)  # the file exists before the readers start
            readers, bare = self.start_readers(db, load.get_bound)
            try:
                # At least 8 replays, and on until every reader has run 3 times during them.
                n = 0
                while n < 8 or min(len(rd.runs) for rd in readers) < 3:
                    self.assertLess(n, 200, "the readers hardly ever finished")
                    load.replay(1)
                    n += 1
            finally:
                self.stop_readers(readers + [bare])
            final = self.snapshot(db)
            self.assertEqual(final["readings"][0], load.lines)
            self.assertEqual(final["per_series"][1], SERIES)
            self.assertGreater(final["readings"][1], 0, "no anomaly scores stored")
            self.assertGreater(final["summaries"][0], 0)
            self.assertGreater(final["alerts"][0], 0)
            self.check_readers(db, readers, final)
            self.observe_no_timeout(bare)
            print(f"\n  replay load: {n + 1} replays, {load.lines} readings; reader runs "
                  f"{[(rd.name, len(rd.runs)) for rd in readers]}", file=sys.stderr)

    def test_live_load_through_mosquitto(self):
        with TmpDir() as tmp:
            broker = Broker(tmp).start()
            db = os.path.join(tmp, "live.db")
            cfg = default_config(broker.port, db, rules=CONFIG["rules"],
                                 windows=CONFIG["windows"])
            gw = Gateway(tmp, cfg).start()
            pub = Client(broker.port)
            sent = [0]
            try:
                pub.publish("sensors/s000/temp", "20").wait_for_publish(10)
                sent[0] = 1
                wait_for(lambda: os.path.exists(db) and db_rows(db, "SELECT count(*) FROM"
                                                                " v_readings")[0][0] == 1,
                         30, "the first reading")
                readers, bare = self.start_readers(db, lambda: sent[0], n_sqlite=2)
                try:
                    g = 0
                    while g < 20000 or min(len(rd.runs) for rd in readers) < 3:
                        self.assertLess(g, 2000000, "the readers hardly ever finished")
                        s = g % SERIES
                        metric = "vib" if s % 3 == 2 else "temp"
                        v = 1.0 if metric == "vib" else 22 + (10 if (g // SERIES) % 40 == 0 else 0)
                        sent[0] += 1  # counted before it can arrive
                        info = pub.publish(f"sensors/s{s:03d}/{metric}", f"{v}", qos=1)
                        if g % 500 == 499:
                            info.wait_for_publish(30)
                        g += 1
                    info.wait_for_publish(30)
                    wait_for(lambda: db_rows(db, "SELECT count(*) FROM v_readings")[0][0] ==
                             sent[0], 120, "every reading stored", step=0.2)
                finally:
                    self.stop_readers(readers + [bare])
                final = self.snapshot(db)
                self.assertEqual(final["readings"][0], sent[0])
                self.check_readers(db, readers, final)
                self.observe_no_timeout(bare)
            finally:
                pub.close()
                self.assertEqual(gw.stop(), 0, gw.text())
                broker.stop()


class WalGrowth(unittest.TestCase):
    def test_wal_shrinks_once_a_long_reader_lets_go(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "w.db")
            wal = db + "-wal"
            load = Load(tmp, db, chunk=60000)
            load.replay(1)
            # A second connection stays open throughout, like a running gateway's: without one,
            # the last replay to close would checkpoint and delete the log.
            idle = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            idle.execute("SELECT count(*) FROM series").fetchone()
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.wait(0.01):
                    try:
                        peak[0] = max(peak[0], os.path.getsize(wal))
                    except OSError:
                        pass
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                holder = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10,
                                         isolation_level=None)
                holder.execute("BEGIN")
                held = holder.execute("SELECT count(*) FROM v_readings").fetchone()[0]
                load.replay(HELD_CHUNKS)
                # Still the old snapshot: the log had to keep every frame since.
                self.assertEqual(holder.execute("SELECT count(*) FROM v_readings").fetchone()[0],
                                 held)
                held_size, held_peak = os.path.getsize(wal), peak[0]
                holder.execute("COMMIT")
                holder.close()
                peak[0] = 0
                load.replay(HELD_CHUNKS)
                after_size, after_peak = os.path.getsize(wal), peak[0]
            finally:
                stop.set()
                sampler.join(10)
            idle.close()
            n = HELD_CHUNKS * load.chunk
            print(f"\n  WAL: {held_size} bytes with a reader holding its snapshot for {n} "
                  f"readings (peak {held_peak}); {after_size} after releasing it and {n} more "
                  f"(peak since {after_peak}); journal_size_limit {JOURNAL_LIMIT}",
                  file=sys.stderr)
            self.assertGreater(held_size, JOURNAL_LIMIT,
                               "the load was too small to test the limit: write more")
            self.assertLessEqual(after_size, JOURNAL_LIMIT)
            # The first transaction after the release still appends (the log restarts only
            # after a checkpoint has copied all of it); past that, it is reused from the start.
            self.assertLessEqual(after_peak, held_peak + JOURNAL_LIMIT,
                                 "the log grew further once released")
            r = subprocess.run([SQLITE3, "-readonly", db, "PRAGMA integrity_check"],
                               capture_output=True, text=True)
            self.assertEqual(r.stdout, "ok\n", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
