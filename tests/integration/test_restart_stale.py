"""Silence across a gateway restart, through a real mosquitto and a real SQLite file: a sensor
that sent readings before the stop (SIGTERM) and nothing since raises its stale alert after
the start, on MQTT and in v_alerts, without any new reading; its next reading clears it, and
the other parts of the rule never saw a reading made up at start. A series whose newest
reading is older than the horizon (retention.raw) and a series no stale rule covers are not
watched from the start."""
import os
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import AlertCase, db_count, default_config, wait_for  # noqa: E402


class RestartStale(AlertCase):
    def test_silent_sensor_is_stale_after_a_restart(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["pipeline"] = {"tick_ms": 100}
        cfg["retention"] = {"raw": "1d"}
        # stale_after long enough that the first run stops before it notices anything; the
        # rate part must never see a reading made up at start.
        cfg["rules"] = [{"name": "silent", "metric": "flow", "stale_after": "4s",
                         "rate_above": 1, "severity": "critical"}]
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/pump/flow", "3.5").wait_for_publish(10)
        pub.publish("sensors/boiler/temp", "20").wait_for_publish(10)  # no stale rule for temp
        wait_for(lambda: db_count(self.db) == 2, 20, "the readings stored")
        stopped_ms = int(time.time() * 1000)
        self.assertEqual(gw.stop(signal.SIGTERM), 0)
        if self.rows("SELECT count(*) FROM v_alerts")[0][0] != 0:
            self.skipTest("the first run noticed the silence itself (a very slow machine)")

        # A series whose newest reading is two days old, beyond retention.raw (1d): taken for
        # decommissioned, it raises nothing at this start.
        con = sqlite3.connect(self.db)
        with con:
            cur = con.execute("INSERT INTO series(sensor, metric) VALUES ('oldpump', 'flow')")
            con.execute("INSERT INTO readings(series_id, ts_ms, value) VALUES (?, ?, 1.0)",
                        (cur.lastrowid, stopped_ms - 2 * 86400 * 1000))
        con.close()

        # The sensor stays silent: the stale alert comes from the clock alone.
        gw = self.gateway(cfg, "gw2")
        self.assertIn("stale: 1 series with readings in the last 86400 s watched for silence "
                      "from the start", gw.text())
        wait_for(lambda: len(self.events(sub)) >= 1, 30, "the stale alert")
        e = self.events(sub)[0]
        self.assertEqual((e["sensor"], e["metric"], e["kind"], e["state"], e["rule"], e["value"],
                          e["severity"]),
                         ("pump", "flow", "stale", "raised", "silent", 3.5, "critical"))
        self.assertIn("silent for", e["message"])
        # The silence counts from the stored reading, the restart included.
        self.assertGreaterEqual(e["silence_ms"], 4000)
        self.assertEqual(self.rows("SELECT sensor, kind, state, rule, value FROM v_alerts"),
                         [("pump", "stale", "raised", "silent", 3.5)])
        self.assertEqual(self.rows("SELECT sensor, kind FROM v_active_alerts"),
                         [("pump", "stale")])
        self.assertEqual(db_count(self.db), 3)  # no reading was added: 2 sent + oldpump's

        # Its next reading clears it. Had the rate part seen 3.5 at start, 3.5 -> 10 within
        # seconds would raise a rate alert in the same transaction as the clear.
        pub.publish("sensors/pump/flow", "10").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "the clear")
        e = self.events(sub)[1]
        self.assertEqual((e["kind"], e["state"], e["value"]), ("stale", "cleared", 10))
        self.assertEqual(self.rows("SELECT sensor, kind, state FROM v_alerts ORDER BY id"),
                         [("pump", "stale", "raised"), ("pump", "stale", "cleared")])
        self.assertEqual(self.rows("SELECT count(*) FROM v_active_alerts")[0][0], 0)
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the alerts marked published")
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(len(self.events(sub)), 2)
        self.assertEqual(self.rows("SELECT count(*) FROM v_alerts WHERE sensor = 'oldpump'"),
                         [(0,)])

    def test_restored_stale_alert_is_not_raised_again(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["pipeline"] = {"tick_ms": 100}
        cfg["rules"] = [{"name": "silent", "metric": "flow", "stale_after": "1s"}]
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/pump/flow", "3.5").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 1, 20, "the stale alert")
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the raise marked published")
        self.assertEqual(gw.stop(signal.SIGTERM), 0)

        # The restore takes the raised alert over; the preload leaves that part alone, so the
        # silence raises nothing a second time, and the next reading clears it.
        gw = self.gateway(cfg, "gw2")
        self.assertIn("1 alerts raised by earlier runs: 1 go on in their rules", gw.text())
        self.assertIn("stale: 1 series with readings in the last 604800 s", gw.text())
        pub.publish("sensors/pump/flow", "3.6").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "the clear")
        self.assertEqual([(e["kind"], e["state"], e["value"]) for e in self.events(sub)],
                         [("stale", "raised", 3.5), ("stale", "cleared", 3.6)])
        self.assertEqual(self.rows("SELECT state FROM v_alerts ORDER BY id"),
                         [("raised",), ("cleared",)])
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main()
