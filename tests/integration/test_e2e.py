"""End to end through a real mosquitto: readings into SQLite, alerts to a real subscriber,
an orderly stop in the middle of a stream that loses nothing acknowledged."""
import json
import os
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Broker, Client, Gateway, TmpDir, db_count, db_rows, default_config,  # noqa: E402
                     wait_for)


class EndToEnd(unittest.TestCase):
    def setUp(self):
        self.tmp_ctx = TmpDir()
        self.tmp = self.tmp_ctx.__enter__()
        self.broker = Broker(self.tmp).start()
        self.db = os.path.join(self.tmp, "gw.db")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.broker.stop()
        self.tmp_ctx.__exit__(None, None, None)

    def client(self):
        c = Client(self.broker.port)
        self.clients.append(c)
        return c

    def test_all_readings_stored(self):
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start()
        pub = self.client()
        n = 20000
        infos = [pub.publish(f"sensors/s{i % 100:03d}/level", str(i * 0.5)) for i in range(n)]
        for info in infos:
            info.wait_for_publish(30)
        wait_for(lambda: db_count(self.db) == n, 60, f"{n} rows in SQLite")
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(db_count(self.db), n)
        rows = db_rows(self.db, "SELECT count(DISTINCT sensor), min(value), max(value) FROM v_readings")
        self.assertEqual(rows[0], (100, 0.0, (n - 1) * 0.5))
        st = gw.final_stats()
        self.assertEqual(st["messages_in"], n)
        self.assertEqual(st["stored"], n)
        self.assertEqual(st["ingest_dropped"], 0)

    def test_alerts_reach_subscriber_and_state_is_retained(self):
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start()
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        # 25 -> 31 raises; 29 is in the band; 27 clears; 35 raises again.
        values = [25, 31, 32, 29, 27, 26, 35]
        for v in values:
            pub.publish("sensors/boiler/temp", str(v)).wait_for_publish(10)
        wait_for(lambda: len(sub.got()) >= 3, 20, "3 alert events")
        events = [json.loads(p) for _, p, _ in sub.got()]
        self.assertEqual([(e["state"], e["value"]) for e in events],
                         [("raised", 31), ("cleared", 27), ("raised", 35)])
        for e in events:
            self.assertEqual(e["sensor"], "boiler")
            self.assertEqual(e["metric"], "temp")
            self.assertEqual(e["kind"], "high")
            self.assertEqual(e["gateway"], "itest")
            self.assertEqual(e["severity"], "warning")
            self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertTrue(e["message"])
        self.assertEqual([t for t, _, _ in sub.got()], ["iotgw/alerts/boiler/temp"] * 3)
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 3)
        # A new subscriber sees the current state (raised) retained.
        late = self.client()
        late.subscribe("iotgw/state/#")
        wait_for(lambda: late.got(), 10, "retained state")
        topic, payload, retained = late.got()[0]
        self.assertEqual(topic, "iotgw/state/boiler/temp/high")
        self.assertTrue(retained)
        self.assertEqual(json.loads(payload)["value"], 35)
        # The outbox marks every alert published after its PUBACK.
        wait_for(lambda: db_rows(self.db, "SELECT count(*) FROM alerts WHERE published = 1")[0][0] == 3,
                 20, "alerts marked published")
        # Status: online, retained.
        st = self.client()
        st.subscribe("iotgw/status")
        wait_for(lambda: st.got(), 10, "status")
        self.assertEqual(st.got()[0][1], b"online")
        self.assertEqual(gw.stop(), 0)
        wait_for(lambda: any(p == b"offline" for _, p, _ in st.got()), 10, "offline status")

    def test_cleared_state_leaves_nothing_retained(self):
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start()
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        for v in [40, 20]:
            pub.publish("sensors/oven/temp", str(v)).wait_for_publish(10)
        wait_for(lambda: len(sub.got()) >= 2, 20, "raise and clear")
        # The retained state is replaced by an empty message: a new subscriber gets nothing.
        # A marker published after it proves the broker delivered everything retained first.
        late = self.client()
        late.subscribe("iotgw/state/#")
        pub.publish("iotgw/state/zz-marker", "m", retain=False)
        late.subscribe("iotgw/state/zz-marker")
        pub.publish("iotgw/state/zz-marker", "m").wait_for_publish(10)
        wait_for(lambda: any(t.endswith("zz-marker") for t, _, _ in late.got()), 10, "marker")
        self.assertEqual([t for t, _, _ in late.got() if not t.endswith("zz-marker")], [])
        gw.stop()

    def test_live_stale_and_rate_alerts(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["pipeline"] = {"tick_ms": 100}
        cfg["rules"] = [{"name": "silent", "metric": "flow", "stale_after": "1s"},
                        {"name": "jump", "metric": "level", "rate_above": 5, "severity": "info"}]
        gw = Gateway(self.tmp, cfg).start()
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        pub.publish("sensors/pump/flow", "3.5").wait_for_publish(10)
        # Nothing more from pump/flow: the gateway's clock notices the silence by itself.
        wait_for(lambda: len(sub.got()) >= 1, 20, "stale alert")
        e = json.loads(sub.got()[0][1])
        self.assertEqual((e["kind"], e["state"], e["value"]), ("stale", "raised", 3.5))
        self.assertIn("silent for", e["message"])
        pub.publish("sensors/pump/flow", "3.6").wait_for_publish(10)
        wait_for(lambda: len(sub.got()) >= 2, 20, "stale cleared")
        e = json.loads(sub.got()[1][1])
        self.assertEqual((e["kind"], e["state"], e["value"]), ("stale", "cleared", 3.6))
        # Rate of change, with timestamps in the payload: 10 -> 40 in 2 s is 15 per second.
        for ts, v in [(1700000000000, 10), (1700000002000, 40), (1700000003000, 41)]:
            pub.publish("json/tank", json.dumps({"ts": ts, "level": v})).wait_for_publish(10)
        wait_for(lambda: len(sub.got()) >= 4, 20, "rate raised and cleared")
        events = [json.loads(p) for _, p, _ in sub.got()[2:4]]
        self.assertEqual([(e["kind"], e["state"], e["value"]) for e in events],
                         [("rate", "raised", 40), ("rate", "cleared", 41)])
        self.assertEqual(gw.stop(), 0)

    def test_sighup_reloads_rules_and_keeps_unchanged_state(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["windows"] = {"sizes": [{"size": "1h"}]}
        cfg["rules"] = [{"name": "warm", "metric": "temp", "above": 30},
                        {"name": "limit", "metric": "temp", "above": 100}]
        gw = Gateway(self.tmp, cfg).start()
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        t0 = 1700000000000 - 1700000000000 % 3600000  # the start of an hour

        def send(sec, v):
            pub.publish("json/boiler", json.dumps({"ts": t0 + sec * 1000, "temp": v})).wait_for_publish(10)

        send(0, 20)
        send(1, 35)
        wait_for(lambda: len(sub.got()) >= 1, 20, "warm raised")
        # Rule "warm" unchanged, "limit" lowered to 20, a bad edit first: that one changes nothing.
        with open(gw.cfg_path, "w") as f:
            f.write("{ not json")
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rules unchanged" in gw.text(), 10, "bad reload refused")
        cfg["rules"][1]["above"] = 20
        with open(gw.cfg_path, "w") as f:
            json.dump(cfg, f)
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rules reloaded" in gw.text(), 10, "reload logged")
        send(2, 36)   # warm is still raised (no second raise); limit (now 20) raises
        send(3, 10)   # both clear
        send(3700, 5)  # the next hour: the first hour's window closes, uninterrupted
        wait_for(lambda: len(sub.got()) >= 4, 20, "4 alert events")
        events = [(e["rule"], e["state"], e["value"]) for e in (json.loads(p) for _, p, _ in sub.got())]
        self.assertEqual(events, [("warm", "raised", 35), ("limit", "raised", 36),
                                  ("warm", "cleared", 10), ("limit", "cleared", 10)])
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(db_rows(self.db, "SELECT count, min, max FROM v_summaries WHERE start_ms = ?", (t0,)),
                         [(4, 10.0, 36.0)])

    def test_window_summaries_on_mqtt(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["windows"] = {"sizes": [{"size": "10s"}], "publish": True}
        gw = Gateway(self.tmp, cfg).start()
        sub = self.client()
        sub.subscribe("iotgw/summaries/#")
        pub = self.client()
        t0 = 1700000000000
        for sec, v in [(0, 1.0), (4, 3.0), (9, 2.0), (10, 7.0)]:  # the 4th closes [0 s, 10 s)
            pub.publish("json/tank", json.dumps({"ts": t0 + sec * 1000, "level": v})).wait_for_publish(10)
        wait_for(lambda: sub.got(), 20, "a summary")
        topic, payload, _ = sub.got()[0]
        self.assertEqual(topic, "iotgw/summaries/tank/level")
        m = json.loads(payload)
        self.assertEqual((m["sensor"], m["metric"], m["window_ms"], m["start_ms"], m["end_ms"]),
                         ("tank", "level", 10000, t0, t0 + 10000))
        self.assertEqual((m["count"], m["min"], m["max"], m["mean"], m["first"], m["last"]),
                         (3, 1.0, 3.0, 2.0, 1.0, 2.0))
        self.assertEqual(m["start"], "2023-11-14T22:13:20.000Z")
        self.assertAlmostEqual(m["stddev"], 1.0)
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(db_rows(self.db, "SELECT count, mean FROM v_summaries"), [(3, 2.0)])

    def test_sigterm_mid_stream_loses_nothing_acknowledged(self):
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start()
        pub = self.client()
        n = 200000
        stop = threading.Event()

        def publish():
            for i in range(n):
                if stop.is_set():
                    return
                pub.publish("sensors/stream/seq", str(i), qos=1)
        th = threading.Thread(target=publish)
        th.start()
        wait_for(lambda: db_count(self.db) > 5000, 60, "the stream to be flowing")
        self.assertEqual(gw.stop(signal.SIGTERM), 0)
        stop.set()
        th.join()
        st = gw.final_stats()
        got = sorted(r[0] for r in db_rows(self.db, "SELECT value FROM v_readings"))
        # One publisher, one topic: the gateway received a prefix of the stream, in order, and
        # every message it acknowledged (counted in messages_in) is in SQLite.
        self.assertGreater(len(got), 5000)
        self.assertEqual(len(got), st["messages_in"])
        self.assertEqual(got, [float(i) for i in range(len(got))])
        self.assertEqual(st["ingest_dropped"], 0)

    def test_bad_input_is_counted_and_the_rest_goes_on(self):
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start()
        pub = self.client()
        bad = [("sensors/a/temp", b"hello"), ("sensors/a/temp", b"nan"), ("sensors/a/temp", b"\xff\xfe"),
               ("json/a", b'{"x": '), ("json/a", b'{"s": "text"}'), ("sensors/a/temp", b"1e999"),
               ("sensors/a/temp", b"x" * 70000), ("json/a", b'{"ts": "yesterday", "t": 1}')]
        good = 0
        for i in range(50):
            topic, payload = bad[i % len(bad)]
            pub.publish(topic, payload).wait_for_publish(10)
            pub.publish("json/b", json.dumps({"ts": 1700000000000 + i, "t": i, "env": {"h": i}}))
            good += 2
        wait_for(lambda: db_count(self.db) == good, 30, "good readings stored")
        self.assertEqual(gw.stop(), 0)
        st = gw.final_stats()
        self.assertEqual(st["stored"], good)
        text = gw.text()
        for reason in ["malformed", "nonfinite", "not_utf8", "not_numeric", "oversize", "bad_ts"]:
            self.assertRegex(text, rf"\b{reason}=\d+", reason)
        rows = db_rows(self.db, "SELECT DISTINCT metric FROM v_readings WHERE sensor = 'b' ORDER BY 1")
        self.assertEqual(rows, [("env.h",), ("t",)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
