"""`iotgw replay` end to end with no broker: a capture with hand-computed expectations, compared
row by row with what lands in SQLite (readings, window summaries, alerts)."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import IOTGW, TmpDir, db_rows  # noqa: E402

T0 = 1700000000000  # 2023-11-14T22:13:20Z, a multiple of 10 s

CONFIG = {
    "subscriptions": [{"topic": "sensors/+/+", "sensor": "{1}", "metric": "{2}"},
                      {"topic": "dev/+", "sensor": "{1}"}],
    "windows": {"sizes": [{"size": "10s"}]},
    "rules": [
        {"name": "hot", "metric": "temp", "above": 30, "clear_below": 28, "for": "2s",
         "severity": "critical"},
        {"name": "jump", "metric": "temp", "rate_above": 5, "severity": "info"},
        {"name": "silent", "metric": "temp", "stale_after": "5s"},
    ],
}

# (seconds after T0, value) for m1/temp; m2/temp reads 10 every second from 0 to 20.
M1 = [(0, 20), (1, 21), (2, 31), (3, 32), (4, 33), (5, 29), (6, 27), (15, 20), (16, 20)]
M2 = [(s, 10) for s in range(21)]


def quantile(xs, p):
    xs = sorted(xs)
    r = (len(xs) - 1) * p
    lo = int(r)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (r - lo)


def stdev(xs):
    n = len(xs)
    if n < 2:
        return 0.0
    m = sum(xs) / n
    return (sum((x - m) ** 2 for x in xs) / (n - 1)) ** 0.5


class Replay(unittest.TestCase):
    def run_replay(self, tmp, lines, *args, quiet=True):
        cap = os.path.join(tmp, "capture.txt")
        with open(cap, "w") as f:
            f.write("\n".join(lines) + "\n")
        cfg = dict(CONFIG, storage={"path": os.path.join(tmp, "r.db")})
        with open(os.path.join(tmp, "c.json"), "w") as f:
            json.dump(cfg, f)
        return subprocess.run([IOTGW, "replay", *(["-q"] if quiet else []), "-c",
                               os.path.join(tmp, "c.json"), *args, cap],
                              capture_output=True, text=True, timeout=120)

    def test_rows_match_hand_computed_expectations(self):
        with TmpDir() as tmp:
            lines = [f"dev/m1 {json.dumps({'ts': T0 + s * 1000, 'temp': v})}" for s, v in M1]
            lines += [f"sensors/m2/temp {json.dumps({'ts': T0 + s * 1000, 'v': 10})}" for s, _ in M2]
            lines.sort(key=lambda l: json.loads(l.split(" ", 1)[1])["ts"])
            r = self.run_replay(tmp, lines)
            self.assertEqual(r.returncode, 0, r.stderr)
            db = os.path.join(tmp, "r.db")

            # Readings: every one, exactly.
            got = db_rows(db, "SELECT sensor, metric, ts_ms, value FROM v_readings ORDER BY sensor, ts_ms")
            want = [("m1", "temp", T0 + s * 1000, float(v)) for s, v in M1]
            want += [("m2", "temp.v", T0 + s * 1000, 10.0) for s, _ in M2]
            self.assertEqual(got, want)

            # Summaries of the 10 s windows, closed by the watermark or by the end of the replay.
            got = db_rows(db, "SELECT sensor, metric, window_ms, start_ms, end_ms, count, min, max,"
                              " mean, stddev, first, last, p50, p95 FROM v_summaries"
                              " ORDER BY sensor, start_ms")
            want = []
            for sensor, metric, series in (("m1", "temp", M1), ("m2", "temp.v", M2)):
                for k in range(3):
                    xs = [float(v) for s, v in series if k * 10 <= s < (k + 1) * 10]
                    if not xs:
                        continue
                    want.append((sensor, metric, 10000, T0 + k * 10000, T0 + (k + 1) * 10000, len(xs),
                                 min(xs), max(xs), sum(xs) / len(xs), stdev(xs), xs[0], xs[-1],
                                 quantile(xs, 0.5), quantile(xs, 0.95)))
            self.assertEqual(len(got), len(want))
            for g, w in zip(got, want):
                self.assertEqual(g[:8], w[:8])
                for a, b in zip(g[8:], w[8:]):
                    self.assertAlmostEqual(a, b, places=9, msg=f"{g} vs {w}")
            start = db_rows(db, "SELECT start FROM v_summaries ORDER BY sensor, start_ms LIMIT 1")
            self.assertEqual(start, [("2023-11-14T22:13:20.000Z",)])

            # Alerts, in order, with ids increasing.
            got = db_rows(db, "SELECT id, sensor, metric, kind, state, severity, ts_ms, value,"
                              " threshold FROM v_alerts ORDER BY id")
            want = [
                ("m1", "temp", "rate", "raised", "info", T0 + 2000, 31.0, 5.0),
                ("m1", "temp", "rate", "cleared", "info", T0 + 3000, 32.0, 5.0),
                ("m1", "temp", "high", "raised", "critical", T0 + 4000, 33.0, 30.0),
                ("m1", "temp", "high", "cleared", "critical", T0 + 6000, 27.0, 28.0),
                # Silent from 6 s: the capture's clock reaches 11 s (= 6 + 5) at m2's reading.
                ("m1", "temp", "stale", "raised", "warning", T0 + 11000, 27.0, 5000.0),
                ("m1", "temp", "stale", "cleared", "warning", T0 + 15000, 20.0, 5000.0),
            ]
            self.assertEqual([g[1:] for g in got], want)
            self.assertEqual([g[0] for g in got], sorted(g[0] for g in got))

    def test_replay_is_deterministic(self):
        dumps = []
        for _ in range(2):
            with TmpDir() as tmp:
                lines = [f"dev/m1 {json.dumps({'ts': T0 + s * 1000, 'temp': v})}" for s, v in M1]
                lines += [f"sensors/s{i % 50}/temp {20 + (i * 7919) % 23}" for i in range(5000)]
                r = self.run_replay(tmp, lines, "--start", "2024-01-01T00:00:00Z", "--step", "100")
                self.assertEqual(r.returncode, 0, r.stderr)
                db = os.path.join(tmp, "r.db")
                dumps.append([db_rows(db, q) for q in (
                    "SELECT * FROM v_readings ORDER BY sensor, metric, ts_ms, value",
                    "SELECT * FROM v_summaries ORDER BY sensor, metric, window_ms, start_ms",
                    "SELECT * FROM v_alerts ORDER BY id")])
        self.assertEqual(dumps[0], dumps[1])
        self.assertGreater(len(dumps[0][2]), 10)

    def test_reading_identity_copies_and_arrival_bursts(self):
        """(series, ts, value) identifies a reading: an exact copy is stored once (counted), a
        repeated ts with another value is kept, and readings stamped on arrival that share a
        millisecond (a SenML pack without times, --step 0) step forward by 1 ms each."""
        with TmpDir() as tmp:
            same = json.dumps({"ts": T0, "temp": 21.5})
            lines = [f"dev/a {same}", f"dev/a {same}",                       # a copy
                     f"dev/a {json.dumps({'ts': T0, 'temp': 22.5})}",        # same ts, new value
                     f"dev/b {json.dumps([{'n': 'temp', 'v': 1}, {'n': 'temp', 'v': 1}])}",
                     "sensors/c/temp 7", "sensors/c/temp 7", "sensors/c/temp 7"]
            r = self.run_replay(tmp, lines, "--start", str(T0), "--step", "0", quiet=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            db = os.path.join(tmp, "r.db")
            self.assertEqual(db_rows(db, "SELECT sensor, ts_ms - ?, value FROM v_readings"
                                         " ORDER BY sensor, ts_ms, value", (T0,)),
                             [("a", 0, 21.5), ("a", 0, 22.5),
                              ("b", 0, 1.0), ("b", 1, 1.0),
                              ("c", 0, 7.0), ("c", 1, 7.0), ("c", 2, 7.0)])
            self.assertIn(" 1 copies skipped", r.stderr)
            # The replay took the copy at the stop merge: every reading is in the file once.
            self.assertEqual(db_rows(db, "SELECT count(*) FROM readings_recent"), [(0,)])

    def test_late_reading_is_stored_and_counted(self):
        with TmpDir() as tmp:
            lines = [f"dev/x {json.dumps({'ts': T0 + s * 1000, 'temp': 1})}" for s in (0, 1, 12)]
            lines.append(f"dev/x {json.dumps({'ts': T0 + 2000, 'temp': 99})}")  # window [0,10) closed
            r = self.run_replay(tmp, lines, quiet=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            db = os.path.join(tmp, "r.db")
            self.assertEqual(db_rows(db, "SELECT count(*) FROM v_readings WHERE value = 99"), [(1,)])
            self.assertEqual(db_rows(db, "SELECT start_ms, count, max FROM v_summaries ORDER BY start_ms"),
                             [(T0, 2, 1.0), (T0 + 10000, 1, 1.0)])
            self.assertIn("1 late", r.stderr)

    def test_predictive_maintenance_end_to_end(self):
        """A bearing heating toward its limit, a pressure spike and a flow step, through the
        whole pipeline: trend alert with the predicted crossing, stored predictions, anomaly
        scores with the readings, a drift alert."""
        import random
        rnd = random.Random(7)
        lines = []
        hour = 3600 * 1000
        for i in range(2400):  # 40 h, one reading a minute
            ts = T0 + i * 60000
            temp = 40 + i / 60.0 + rnd.gauss(0, 0.2)  # +1 per hour: 80 at 40 h
            pressure = 2.0 + rnd.gauss(0, 0.02) + (1.0 if i == 1500 else 0)
            flow = 10 + rnd.gauss(0, 0.1) + (2.0 if i >= 1800 else 0)
            lines.append("plant/pump1 " + json.dumps({"ts": ts, "bearing": round(temp, 3),
                                                      "pressure": round(pressure, 4),
                                                      "flow": round(flow, 3)}))
        with TmpDir() as tmp:
            cap = os.path.join(tmp, "capture.txt")
            with open(cap, "w") as f:
                f.write("\n".join(lines) + "\n")
            cfg = {"subscriptions": [{"topic": "plant/+", "sensor": "{1}"}],
                   "storage": {"path": os.path.join(tmp, "r.db")},
                   "predictions": {"interval": "30m"},
                   "rules": [{"name": "bearing-hot", "metric": "bearing", "trend_limit": 80,
                              "horizon": "12h", "severity": "critical"},
                             {"name": "watch", "metric": "pressure", "anomaly": 0.99999},
                             {"name": "flow-shift", "metric": "flow", "drift": True}]}
            with open(os.path.join(tmp, "c.json"), "w") as f:
                json.dump(cfg, f)
            r = subprocess.run([IOTGW, "replay", "-q", "-c", os.path.join(tmp, "c.json"), cap],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            db = os.path.join(tmp, "r.db")
            alerts = db_rows(db, "SELECT metric, kind, state, ts_ms, value, threshold, message"
                                 " FROM v_alerts ORDER BY id")
            trend = [a for a in alerts if a[1] == "trend" and a[2] == "raised"]
            self.assertEqual(len(trend), 1, alerts)
            # Raised about 12 h before the crossing at 40 h (the fit needs some history).
            self.assertGreater(trend[0][3], T0 + 25 * hour)
            self.assertLess(trend[0][3], T0 + 30 * hour)
            self.assertIn("predicted at", trend[0][6])
            # The predicted crossing travels with the alert (alerts.detail; "eta" on MQTT).
            eta = db_rows(db, "SELECT detail FROM alerts WHERE kind = 'trend' AND state = 'raised'")
            self.assertLess(abs(eta[0][0] - (T0 + 40 * hour)), 0.1 * (T0 + 40 * hour - trend[0][3]))
            printed = subprocess.run([IOTGW, "replay", "-q", "-a", "-c", os.path.join(tmp, "c.json"),
                                      "-d", os.path.join(tmp, "again.db"), cap],
                                     capture_output=True, text=True, timeout=120).stdout
            events = [json.loads(l) for l in printed.splitlines()]
            self.assertRegex([e for e in events if e["kind"] == "trend"][0]["eta"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertGreaterEqual([e for e in events if e["kind"] == "anomaly"][0]["score"], 0.99999)
            self.assertIn("shift", [e for e in events if e["kind"] == "drift"][0])
            self.assertNotIn("rate", [e for e in events if e["kind"] == "trend"][0])
            self.assertEqual([a[:3] for a in alerts if a[0] == "pressure"][:1],
                             [("pressure", "anomaly", "raised")])
            spike = [a for a in alerts if a[0] == "pressure"][0]
            self.assertEqual(spike[3], T0 + 1500 * 60000)
            drift = [a for a in alerts if a[0] == "flow" and a[1] == "drift" and a[2] == "raised"]
            self.assertEqual(len(drift), 1, alerts)
            self.assertGreaterEqual(drift[0][3], T0 + 1800 * 60000)
            self.assertLess(drift[0][3], T0 + 1860 * 60000)  # within an hour of the step
            self.assertFalse([a for a in alerts if a[0] == "bearing" and a[1] != "trend"])
            # Predictions every 30 min of stream time; the eta of the last within 10 %.
            preds = db_rows(db, "SELECT ts_ms, level, slope_per_h, eta_ms FROM v_predictions"
                                " WHERE metric = 'bearing' ORDER BY ts_ms")
            self.assertGreater(len(preds), 60)
            ts, level, slope, eta = preds[-1]
            self.assertAlmostEqual(slope, 1.0, delta=0.1)
            remaining = T0 + 40 * hour - ts
            self.assertLess(abs(eta - (T0 + 40 * hour)), 0.1 * max(remaining, hour))
            # Anomaly scores are stored with the readings of the series that has a detector.
            scored = db_rows(db, "SELECT metric, count(anomaly), max(anomaly) FROM v_readings"
                                 " GROUP BY metric ORDER BY metric")
            self.assertEqual([(m, n) for m, n, _ in scored],
                             [("bearing", 0), ("flow", 0), ("pressure", 2400)])
            self.assertGreaterEqual(scored[2][2], 0.99999)

    def test_bad_lines_and_usage_errors(self):
        with TmpDir() as tmp:
            r = self.run_replay(tmp, ["sensors/a/temp 1", "no-space-here", "sensors/a/temp nope"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 bad messages, 1 lines without a space", r.stderr)
            r = subprocess.run([IOTGW, "replay", os.path.join(tmp, "missing.txt")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("missing.txt: No such file or directory", r.stderr)
            r = subprocess.run([IOTGW, "replay"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            r = subprocess.run([IOTGW, "replay", "--help"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0)
            self.assertIn("--print-alerts", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
