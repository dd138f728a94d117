"""`iotgw query` and `iotgw alerts` on databases made by `iotgw replay`: every output format
checked against the views read with Python's sqlite3, exit codes and messages, and queries
that run while another process writes the same file."""
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import IOTGW, TmpDir, db_rows  # noqa: E402

T0 = 1700000000000  # 2023-11-14T22:13:20Z, a multiple of 10 s

CONFIG = {
    "subscriptions": [{"topic": "sensors/+/+", "sensor": "{1}", "metric": "{2}"},
                      {"topic": "dev/+", "sensor": "{1}"}],
    "windows": {"sizes": [{"size": "10s"}]},
    "rules": [{"name": "hot", "metric": "temp", "above": 30, "clear_below": 28,
               "severity": "critical"}],
}

# A sensor name that is hostile as SQL and awkward as CSV and JSON (a capture line ends the
# topic at its first space, so the name has none).
ODD = "o'brien,\"x\"--;"


def capture_lines():
    lines = []
    for s in range(40):
        ts = T0 + s * 1000
        for i, sensor in enumerate(("pump1", "pump2", "fan")):
            o = {"ts": ts, "temp": 20 + (s * 7 + i * 5) % 15}  # crosses 30 and 28 now and then
            if sensor == "pump1":
                o["rpm"] = 1500 + s
            lines.append(f"dev/{sensor} {json.dumps(o)}")
    lines.append(f"dev/{ODD} {json.dumps({'ts': T0 + 5000, 'temp': 1.5})}")
    return lines


def replay(tmp, lines, db, *args):
    cap = os.path.join(tmp, f"cap{time.monotonic_ns()}.txt")
    with open(cap, "w") as f:
        f.write("\n".join(lines) + "\n")
    cfg = os.path.join(tmp, "c.json")
    with open(cfg, "w") as f:
        json.dump(dict(CONFIG, storage={"path": db}), f)
    return subprocess.Popen([IOTGW, "replay", "-q", "-c", cfg, *args, cap],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=300):
    """Waits for a replay; returns its exit status and standard error (closing the pipe)."""
    err = p.communicate(timeout=timeout)[1]
    return p.returncode, err


def run(*args):
    return subprocess.run([IOTGW, *args], capture_output=True, text=True, timeout=60)


class Query(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp_ctx = TmpDir()
        cls.tmp = cls.tmp_ctx.__enter__()
        cls.db = os.path.join(cls.tmp, "q.db")
        rc, err = finish(replay(cls.tmp, capture_lines(), cls.db))
        assert rc == 0, err

    @classmethod
    def tearDownClass(cls):
        cls.tmp_ctx.__exit__(None, None, None)

    def ok(self, cmd, *args):
        r = run(cmd, "--db", self.db, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def rows(self, sql, args=()):
        return [list(r) for r in db_rows(self.db, sql, args)]

    def test_raw_readings_in_three_formats(self):
        want = self.rows("SELECT sensor, metric, ts_ms, ts, value, anomaly FROM v_readings"
                         " WHERE sensor GLOB 'pump*' AND metric = 'temp' AND ts_ms >= ? AND"
                         " ts_ms < ? ORDER BY ts_ms, sensor", (T0 + 3000, T0 + 9000))
        self.assertEqual(len(want), 12)
        sel = ["--sensor", "pump*", "--metric", "temp", "--since", "2023-11-14T22:13:23Z",
               "--until", str(T0 + 9000)]
        cols = ["sensor", "metric", "ts_ms", "ts", "value", "anomaly"]

        got = json.loads(self.ok("query", *sel, "--format", "json").stdout)
        self.assertEqual([[o[c] for c in cols] for o in got], want)
        self.assertEqual(list(got[0]), cols)
        self.assertIsInstance(got[0]["ts_ms"], int)
        self.assertIsNone(got[0]["anomaly"])

        r = list(csv.reader(io.StringIO(self.ok("query", *sel, "-f", "csv").stdout, newline="")))
        self.assertEqual(r[0], cols)
        self.assertEqual(r[1:], [[s, m, str(t), ts, f"{v:g}", ""] for s, m, t, ts, v, _ in want])

        lines = self.ok("query", *sel).stdout.splitlines()
        self.assertEqual(lines[0].split(), cols)
        self.assertEqual(set(lines[1]), {"-", " "})
        self.assertEqual([ln.split() for ln in lines[2:]],
                         [[s, m, str(t), ts, f"{v:g}"] for s, m, t, ts, v, _ in want])
        # Aligned: the numbers end where their header ends.
        end = lines[0].index("ts_ms") + len("ts_ms")
        self.assertTrue(all(ln[end - 13:end].isdigit() for ln in lines[2:]))

    def test_windows_from_summaries_and_from_raw(self):
        raw = self.rows("SELECT sensor, metric, ts_ms, value FROM v_readings WHERE sensor = 'fan'"
                        " ORDER BY ts_ms")
        want = []
        for k in range(4):
            xs = [v for _, _, t, v in raw if T0 + k * 10000 <= t < T0 + (k + 1) * 10000]
            want.append(["fan", "temp", T0 + k * 10000, T0 + (k + 1) * 10000, len(xs), min(xs),
                         max(xs), sum(xs) / len(xs), xs[0], xs[-1]])
        keys = ["sensor", "metric", "start_ms", "end_ms", "count", "min", "max", "avg", "first",
                "last"]
        for w in want:
            w[7] = round(w[7], 9)  # a mean summed in another order may differ in the last bit
        for source in ("auto", "raw", "summaries"):
            got = json.loads(self.ok("query", "--sensor", "fan", "--window", "10s", "--source",
                                     source, "-f", "json").stdout)
            got_rows = [[o[k] for k in keys] for o in got]
            for g in got_rows:
                g[7] = round(g[7], 9)
            self.assertEqual(got_rows, want, source)
            self.assertEqual(got[0]["start"], "2023-11-14T22:13:20.000Z")
        # 20 s windows are not stored: computed from the raw readings; --since picks whole
        # windows that overlap it.
        got = json.loads(self.ok("query", "--sensor", "fan", "--window", "20s", "--since",
                                 str(T0 + 25000), "-f", "json").stdout)
        xs = [v for _, _, t, v in raw if t >= T0 + 20000]
        self.assertEqual([(o["start_ms"], o["count"], round(o["avg"], 9)) for o in got],
                         [(T0 + 20000, len(xs), round(sum(xs) / len(xs), 9))])

    def test_alerts_and_active_alerts(self):
        cols = ["id", "sensor", "metric", "kind", "state", "severity", "ts_ms", "ts", "value",
                "threshold", "message", "published", "rule"]
        want = self.rows(f"SELECT {', '.join(cols)} FROM v_alerts ORDER BY id")
        self.assertGreater(len(want), 6)
        got = json.loads(self.ok("alerts", "-f", "json").stdout)
        self.assertEqual([[o[c] for c in cols] for o in got], want)
        active = self.rows(f"SELECT {', '.join(cols)} FROM v_active_alerts ORDER BY id")
        got = json.loads(self.ok("alerts", "--active", "-f", "json").stdout)
        self.assertEqual([[o[c] for c in cols] for o in got], active)
        # The newest transition per series is the active one: computed here independently.
        last = {}
        for row in want:
            last[(row[1], row[2], row[3], row[12])] = row
        self.assertEqual(active, sorted((r for r in last.values() if r[4] == "raised"),
                                        key=lambda r: r[0]))
        r = list(csv.reader(io.StringIO(self.ok("alerts", "-f", "csv", "--sensor", "pump2",
                                                "--reverse").stdout, newline="")))
        self.assertEqual(r[0], cols)
        self.assertEqual([int(x[0]) for x in r[1:]],
                         [w[0] for w in reversed(want) if w[1] == "pump2"])
        lines = self.ok("alerts", "--limit", "2").stdout.splitlines()
        self.assertEqual(lines[0].split(), cols)
        self.assertEqual(len(lines), 4)

    def test_limit_is_a_number_and_truncation_is_said(self):
        r = self.ok("query", "--limit", "5", "-f", "csv")
        self.assertEqual(len(r.stdout.splitlines()), 6)
        self.assertIn("showing the oldest 5 rows", r.stderr)
        r = self.ok("query", "--limit", "100000000", "-f", "csv")
        self.assertEqual(r.stderr, "")
        r = self.ok("query", "-f", "csv")  # default 1000: all 161 rows
        self.assertEqual(len(r.stdout.splitlines()), 162)
        for bad in ("0", "-1", "100000001", "ten"):
            r = run("query", "--db", self.db, "--limit", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(f"--limit: expected a number of rows from 1 to 100000000, got '{bad}'",
                          r.stderr)

    def test_relative_times(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "now.db")
            # One reading a minute from 2 h ago, half a minute off the even minutes, so that the
            # seconds between this line and the queries do not move a reading across a bound.
            start = int(time.time() * 1000) - 2 * 3600 * 1000 + 30000
            p = replay(tmp, [f"sensors/a/temp {i}" for i in range(60)], db, "--start", str(start),
                       "--step", "60000")
            self.assertEqual(finish(p), (0, ""))
            count = lambda *a: len(json.loads(run("query", "--db", db, "-f", "json", *a).stdout))
            self.assertEqual(count("--since", "3h"), 60)
            self.assertEqual(count("--since", "90m"), 30)
            self.assertEqual(count("--since", "1h"), 0)
            self.assertEqual(count("--until", "1.5h"), 30)
            self.assertEqual(count("--since", "7d", "--until", "now"), 60)

    def test_anomaly_scores(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "scored.db")
            cfg = os.path.join(tmp, "s.json")
            with open(cfg, "w") as f:
                json.dump({"subscriptions": CONFIG["subscriptions"], "storage": {"path": db},
                           "rules": [{"name": "watch", "metric": "p", "anomaly": 0.99999}]}, f)
            cap = os.path.join(tmp, "s.txt")
            with open(cap, "w") as f:
                for i in range(200):
                    f.write(f"sensors/a/p {2 + 0.01 * ((i * 7919) % 13) + (5 if i == 150 else 0)}\n")
                    f.write(f"sensors/a/q {i}\n")
            r = run("replay", "-q", "-c", cfg, cap)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = json.loads(run("query", "--db", db, "--metric", "p", "-f", "json").stdout)
            self.assertEqual(len(got), 200)
            self.assertTrue(all(0 <= o["anomaly"] <= 1 for o in got))
            self.assertEqual(max(range(200), key=lambda i: got[i]["anomaly"]), 150)
            want = db_rows(db, "SELECT anomaly FROM v_readings WHERE metric = 'p' ORDER BY ts_ms")
            self.assertEqual([o["anomaly"] for o in got], [w[0] for w in want])
            r = run("query", "--db", db, "--metric", "q", "-f", "csv", "-n", "1")
            self.assertTrue(r.stdout.splitlines()[1].endswith(",0,"))  # q is not scored: NULL

    def test_hostile_and_odd_names(self):
        r = self.ok("query", "--sensor", "x' OR 1=1 --", "-f", "json")
        self.assertEqual(r.stdout, "[]\n")
        r = self.ok("query", "--sensor", "' OR ''='", "--metric", "'; DROP TABLE readings; --")
        self.assertEqual(len(r.stdout.splitlines()), 2)  # header and rule: nothing matched
        got = json.loads(self.ok("query", "--sensor", "o'brien*", "-f", "json").stdout)
        self.assertEqual([(o["sensor"], o["value"]) for o in got], [(ODD, 1.5)])
        r = list(csv.reader(io.StringIO(self.ok("query", "--sensor", "o'*", "-f", "csv").stdout,
                                        newline="")))
        self.assertEqual(r[1][0], ODD)
        self.assertEqual(self.rows("SELECT count(*) FROM v_readings"), [[161]])

    def test_errors_and_exit_codes(self):
        r = run("query", "--db", os.path.join(self.tmp, "missing.db"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.db: No such file or directory", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "missing.db")))
        other = os.path.join(self.tmp, "other.db")
        con = sqlite3.connect(other)
        con.execute("CREATE TABLE t(x)")
        con.close()
        r = run("alerts", "--db", other)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an iotgw database", r.stderr)
        r = run("query", "--db", self.db, "--since", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("iotgw query: --since: expected a duration like 24h or an RFC 3339 time,"
                      " got 'x'", r.stderr)
        for args in (["--db", self.db, "--format", "xml"], ["--db", self.db, "--window", "0s"],
                     ["--db", self.db, "extra"], ["--db", self.db, "--source", "raw"], [],
                     ["--db", self.db, "--since", "1h", "--until", "2h"]):
            r = run("query", *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("iotgw query: "), r.stderr)
        r = run("alerts", "--db", self.db, "--window", "1h")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option '--window'", r.stderr)
        for cmd in ("query", "alerts"):
            r = run(cmd, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("exit status", r.stdout)
        # Nothing matches: success, and a well-formed empty result.
        r = self.ok("alerts", "--sensor", "nobody", "-f", "json")
        self.assertEqual(r.stdout, "[]\n")
        r = self.ok("query", "--sensor", "nobody", "-f", "csv")
        self.assertEqual(r.stdout.splitlines(), ["sensor,metric,ts_ms,ts,value,anomaly"])


class Concurrent(unittest.TestCase):
    """Queries while another process writes: each must succeed ("database is locked" never)."""

    def query_while(self, writer, db, min_queries):
        n, seen = 0, set()
        while writer.poll() is None or n < min_queries:
            for args in (["query", "-r", "-n", "3", "-f", "json"],
                         ["query", "-r", "-n", "2", "--window", "1s", "--source", "raw"],
                         ["alerts", "--active", "-f", "csv"],
                         ["query", "--sensor", "s1*", "-r", "-n", "1", "-f", "csv"]):
                r = run(args[0], "--db", db, *args[1:])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("locked", r.stderr)
                if args[2] == "-n" and args[3] == "3":
                    seen.add(r.stdout)
                n += 1
        return n, seen

    def test_queries_during_a_replay(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "big.db")
            self.assertEqual(finish(replay(tmp, ["sensors/s0/temp 1"], db)), (0, ""))
            lines = [f"sensors/s{i % 200}/temp {20 + (i * 7919) % 23}" for i in range(1000000)]
            writer = replay(tmp, lines, db, "--step", "10")
            n, seen = self.query_while(writer, db, 8)
            self.assertEqual(finish(writer), (0, ""))
            self.assertGreater(n, 8)
            self.assertGreater(len(seen), 1, "the queries never saw the writer's progress")
            self.assertEqual(db_rows(db, "SELECT count(*) FROM v_readings"), [(1000001,)])

    def test_queries_during_python_inserts(self):
        with TmpDir() as tmp:
            db = os.path.join(tmp, "py.db")
            self.assertEqual(finish(replay(tmp, ["sensors/s0/temp 1"], db)), (0, ""))
            # Small and large transactions in a loop for 3 s, through the internal tables.
            code = (
                "import sqlite3, sys, time\n"
                "con = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)\n"
                "con.execute('PRAGMA journal_mode=WAL')\n"
                "end, i = time.monotonic() + 3, 0\n"
                "while time.monotonic() < end:\n"
                "    con.execute('BEGIN IMMEDIATE')\n"
                "    n = 20000 if i % 10 == 0 else 50\n"
                "    con.executemany('INSERT INTO readings_recent(series_id, ts_ms, value)'\n"
                "                    ' VALUES(1, ?, ?)', [(i * 100000 + k, k) for k in range(n)])\n"
                "    con.execute('COMMIT')\n"
                "    i += 1\n")
            writer = subprocess.Popen(["/usr/bin/python3", "-c", code, db],
                                      stderr=subprocess.PIPE, text=True)
            n, seen = self.query_while(writer, db, 8)
            self.assertEqual(finish(writer), (0, ""))
            self.assertGreater(len(seen), 1, "the queries never saw the writer's progress")


MIN = 60000
HOUR = 3600000
H0 = 1699999200000  # 2023-11-14T22:00:00Z


class ThinnedHistory(unittest.TestCase):
    """`iotgw query --window` over a history that retention has thinned out: hours rolled up
    into 1-hour summaries, then 1-minute summaries, then raw readings. `--source auto` answers
    every window, each with the figures of all the readings the capture had."""

    RETENTION = {"raw": "6h", "downsample": "1m", "interval": "1h",
                 "summaries": [{"window": "1m", "keep": "12h", "into": "1h"},
                               {"window": "1h", "keep": "0"}]}

    @classmethod
    def setUpClass(cls):
        cls.tmp_ctx = TmpDir()
        cls.tmp = cls.tmp_ctx.__enter__()
        cls.db = os.path.join(cls.tmp, "thin.db")
        # Two series, one reading each every 30 s for 30 h 20 min; b is silent from 20:00 to
        # 22:00 after H0 (no windows there). The last reading sets the retention clock:
        # raw readings from H0 + 24h20m on, 1-minute summaries from H0 + 18h, 1-hour ones
        # before.
        cls.values, lines = {}, []
        for i in range((30 * 60 + 20) * 2 + 1):
            t = H0 + i * 30000
            for k, sensor in enumerate(("a", "b")):
                if sensor == "b" and H0 + 20 * HOUR <= t < H0 + 22 * HOUR:
                    continue
                v = round(10 * k + ((i * 7919 + k * 104729) % 1000) / 100, 2)
                cls.values[(sensor, t)] = v
                lines.append(f"dev/{sensor} {json.dumps({'ts': t, 'temp': v})}")
        cls.end = H0 + (30 * 60 + 20) * MIN
        cap = os.path.join(cls.tmp, "cap.txt")
        with open(cap, "w") as f:
            f.write("\n".join(lines) + "\n")
        cfg = os.path.join(cls.tmp, "c.json")
        with open(cfg, "w") as f:
            json.dump({"subscriptions": CONFIG["subscriptions"], "storage": {"path": cls.db},
                       "retention": cls.RETENTION}, f)
        r = run("replay", "-q", "-c", cfg, cap)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp_ctx.__exit__(None, None, None)

    def want(self, w, since=None, until=None, raw_from=None):
        """The windows of size w computed here from every reading of the capture (from
        raw_from on only, when given)."""
        groups = {}
        for (s, t), v in sorted(self.values.items(), key=lambda kv: kv[0][1]):
            if raw_from is None or t >= raw_from:
                groups.setdefault((t - t % w, s), []).append(v)
        rows = []
        for (start, s), xs in sorted(groups.items()):
            if (since is None or start + w > since) and (until is None or start < until):
                rows.append([s, "temp", start, start + w, len(xs), min(xs), max(xs),
                             sum(xs) / len(xs), xs[0], xs[-1]])
        return rows

    def got(self, *args):
        r = run("query", "--db", self.db, "-f", "json", "-n", "100000", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        keys = ["sensor", "metric", "start_ms", "end_ms", "count", "min", "max", "avg", "first",
                "last"]
        return [[o[k] for k in keys] for o in json.loads(r.stdout)], r.stderr

    def same(self, got, want):
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(g[:7] + g[8:], w[:7] + w[8:], g)
            self.assertAlmostEqual(g[7], w[7], delta=1e-9 * abs(w[7]), msg=g)

    def test_the_history_is_thinned(self):
        sizes = dict(db_rows(self.db, "SELECT window_ms, min(start_ms) || '..' || max(start_ms)"
                                      " FROM v_summaries GROUP BY window_ms"))
        self.assertEqual(sizes, {HOUR: f"{H0}..{H0 + 17 * HOUR}",
                                 MIN: f"{H0 + 18 * HOUR}..{H0 + 24 * HOUR + 19 * MIN}"})
        self.assertEqual(db_rows(self.db, "SELECT min(ts_ms) FROM v_readings"),
                         [(H0 + 24 * HOUR + 20 * MIN,)])

    def test_auto_answers_every_window(self):
        for w in (HOUR, 2 * HOUR, 24 * HOUR):
            got, err = self.got("--window", f"{w}ms")
            self.assertEqual(err, "")
            self.same(got, self.want(w))
        # 15-minute windows need summaries that divide 15 minutes: where only 1-hour roll-ups
        # are left, there is nothing to answer them from.
        got, _ = self.got("--window", "15m")
        self.same(got, self.want(15 * MIN, H0 + 18 * HOUR))
        # b's silence: no window is made up for it.
        got, _ = self.got("--window", "1h", "--sensor", "b")
        self.assertNotIn(H0 + 20 * HOUR, [g[2] for g in got])
        self.assertEqual(len(got), 31 - 2)
        # Minutes around the raw cutoff: stored ones, then computed ones.
        since, until = H0 + 24 * HOUR, H0 + 25 * HOUR
        got, _ = self.got("--window", "1m", "--since", str(since), "--until", str(until))
        self.same(got, self.want(MIN, since, until))
        self.assertEqual(len(got), 120)

    def test_limit_and_reverse_over_the_mixed_answer(self):
        want = self.want(HOUR, H0 + 16 * HOUR, H0 + 26 * HOUR)
        got, err = self.got("--window", "1h", "--since", str(H0 + 16 * HOUR + 1), "--until",
                            str(H0 + 25 * HOUR + 1), "--reverse", "--limit", "7")
        self.same(got, list(reversed(want))[:7])
        self.assertIn("showing the newest 7 rows", err)
        got, err = self.got("--window", "1h", "--since", str(H0 + 16 * HOUR), "--limit", "5")
        self.same(got, want[:5])
        self.assertIn("showing the oldest 5 rows", err)
        r = run("query", "--db", self.db, "--window", "1h", "--since", str(H0 + 17 * HOUR),
                "--until", str(H0 + 19 * HOUR), "-f", "csv")
        self.assertEqual(r.stdout.splitlines()[0],
                         "sensor,metric,start_ms,start,end_ms,count,min,max,avg,first,last")
        self.assertEqual([ln.split(",")[:3] for ln in r.stdout.splitlines()[1:]],
                         [[s, "temp", str(t)] for t in (H0 + 17 * HOUR, H0 + 18 * HOUR)
                          for s in ("a", "b")])

    def test_the_other_sources_are_unchanged(self):
        # raw: the readings still raw only, also in the hour they were cut off in.
        got, _ = self.got("--window", "1h", "--source", "raw")
        self.same(got, self.want(HOUR, raw_from=H0 + 24 * HOUR + 20 * MIN))
        self.assertEqual(got[0][2:5], [H0 + 24 * HOUR, H0 + 25 * HOUR, 80])
        got, _ = self.got("--window", "1h", "--source", "summaries")
        self.same(got, self.want(HOUR, None, H0 + 18 * HOUR))


if __name__ == "__main__":
    unittest.main(verbosity=2)
