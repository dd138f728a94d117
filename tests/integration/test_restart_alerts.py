"""Alert states across a gateway restart, through a real mosquitto and a real SQLite file: an
alert raised before the stop (SIGTERM or SIGKILL) is not raised a second time by a value that
is still abnormal, and a normal value clears it (stored, published, retained state emptied);
an active alert whose rule was removed from the config is cleared at start."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import IOTGW, AlertCase, db_count, default_config, wait_for  # noqa: E402


class RestartAlerts(AlertCase):
    def restart_keeps_state(self, sig):
        cfg = default_config(self.broker.port, self.db)
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/boiler/temp", "31").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 1, 20, "the raise")
        raised = self.events(sub)[0]
        self.assertEqual((raised["kind"], raised["state"], raised["value"]), ("high", "raised", 31))
        # Published and marked so, so that the restart has nothing of it left to resend.
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 1")[0][0] == 1,
                 20, "the raise marked published")
        rc = gw.stop(sig)
        self.assertEqual(rc, 0 if sig == signal.SIGTERM else -signal.SIGKILL)
        self.assertEqual(len(self.rows("SELECT id FROM v_active_alerts")), 1)

        gw = self.gateway(cfg, "gw2")
        self.assertIn("1 alerts raised by earlier runs: 1 go on in their rules", gw.text())
        # The broker still holds the raised state from before the stop.
        self.assertEqual(self.retained_states(pub)["iotgw/state/boiler/temp/high"]["id"],
                         raised["id"])

        # Still above the limit: stored with the reading's transaction, and no second raise.
        pub.publish("sensors/boiler/temp", "33").wait_for_publish(10)
        wait_for(lambda: db_count(self.db) == 2, 20, "the second reading stored")
        self.assertEqual(self.rows("SELECT count(*) FROM v_alerts WHERE state = 'raised'")[0][0], 1)
        self.assertEqual(self.rows("SELECT count(*) FROM v_alerts")[0][0], 1)

        # Back to normal: an ordinary clear, stored, published, the retained state emptied.
        pub.publish("sensors/boiler/temp", "25").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "the clear")
        evs = self.events(sub)
        # Alerts of one series arrive in id order: a raise by 33 would have come before.
        self.assertEqual([(e["kind"], e["state"], e["value"]) for e in evs],
                         [("high", "raised", 31), ("high", "cleared", 25)])
        self.assertGreater(evs[1]["id"], evs[0]["id"])
        self.assertEqual(evs[1]["message"], "temp of boiler is back to 25, below 28 (rule hot)")
        self.assertEqual(evs[1]["threshold"], 28)
        self.assertEqual(self.rows("SELECT count(*) FROM v_active_alerts")[0][0], 0)
        self.assertEqual(self.rows("SELECT state, value FROM v_alerts ORDER BY id"),
                         [("raised", 31.0), ("cleared", 25.0)])
        self.assertNotIn("iotgw/state/boiler/temp/high", self.retained_states(pub))
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the clear marked published")
        self.assertEqual(gw.stop(), 0)

    def test_sigterm_restart_keeps_raised_state(self):
        self.restart_keeps_state(signal.SIGTERM)

    def test_sigkill_restart_keeps_raised_state(self):
        self.restart_keeps_state(signal.SIGKILL)

    def test_alert_of_removed_rule_is_cleared_at_start(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["rules"].append({"name": "cold", "metric": "temp", "below": 5, "clear_above": 7})
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/tank/temp", "3").wait_for_publish(10)
        pub.publish("sensors/boiler/temp", "31").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "two raises")
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(len(self.rows("SELECT id FROM v_active_alerts")), 2)

        # "cold" is gone; "hot" stays and keeps its alert.
        cfg["rules"] = cfg["rules"][:1]
        gw = self.gateway(cfg, "gw2")
        wait_for(lambda: len(self.events(sub)) >= 3, 20, "the clear at start")
        e = self.events(sub)[2]
        self.assertEqual((e["sensor"], e["kind"], e["state"], e["rule"], e["value"]),
                         ("tank", "low", "cleared", "cold", 3))
        self.assertEqual(e["message"], "low alert on temp of tank cleared at start: rule cold is "
                                       "no longer in the configuration")
        self.assertIn("1 go on in their rules, 1 are cleared at start", gw.text())
        self.assertEqual(self.rows("SELECT sensor, kind, rule FROM v_active_alerts"),
                         [("boiler", "high", "hot")])
        states = self.retained_states(pub)
        self.assertNotIn("iotgw/state/tank/temp/low", states)
        self.assertIn("iotgw/state/boiler/temp/high", states)
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the clear marked published")
        self.assertEqual(gw.stop(), 0)

        # The next start has nothing of it left to clear.
        gw = self.gateway(cfg, "gw3")
        self.assertIn("1 alerts raised by earlier runs: 1 go on in their rules, 0 are cleared",
                      gw.text())
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(len(self.events(sub)), 3)

    def replay(self, name, lines, cfg):
        cap = os.path.join(self.tmp, f"{name}.txt")
        with open(cap, "w") as f:
            f.write("\n".join(lines) + "\n")
        path = os.path.join(self.tmp, f"{name}.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([IOTGW, "replay", "-q", "-a", "-c", path, cap], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()], r.stderr

    def test_replay_on_an_existing_database_goes_on(self):
        t0 = 1700000000000
        cfg = default_config(self.broker.port, self.db)

        def line(s, v):
            return "json/boiler " + json.dumps({"ts": t0 + s * 1000, "temp": v})
        out, _ = self.replay("c1", [line(0, 25), line(1, 31)], cfg)
        self.assertEqual([(e["state"], e["value"]) for e in out], [("raised", 31)])
        # The next capture on the same file: still above raises nothing, 25 clears.
        out, err = self.replay("c2", [line(2, 33), line(3, 25)], dict(cfg, log={"level": "debug"}))
        self.assertIn("1 go on in their rules", err)
        self.assertEqual([(e["state"], e["value"], e["ts"]) for e in out],
                         [("cleared", 25, "2023-11-14T22:13:23.000Z")])
        self.assertEqual(self.rows("SELECT state, value FROM v_alerts ORDER BY id"),
                         [("raised", 31.0), ("cleared", 25.0)])
        self.assertEqual(self.rows("SELECT count(*) FROM v_active_alerts")[0][0], 0)
        # Replaying the first capture again on this file raises again (its state is clear
        # now); a capture that stays above raises nothing more.
        out, _ = self.replay("c1", [line(0, 25), line(1, 31)], cfg)
        self.assertEqual([(e["state"], e["value"]) for e in out], [("raised", 31)])
        out, _ = self.replay("c3", [line(1, 31), line(4, 32)], cfg)
        self.assertEqual(out, [])
        self.assertEqual(self.rows("SELECT count(*), max(value) FROM v_active_alerts"), [(1, 31.0)])


if __name__ == "__main__":
    unittest.main()
