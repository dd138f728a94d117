"""Open alerts across a reload of the rules (SIGHUP), through a real mosquitto and a real
SQLite file: an alert of a rule whose limit changed is not raised a second time by a value
that is still abnormal, and clears by the new levels; an alert of a rule removed from the
config is cleared at the reload (stored, published, the retained state emptied,
v_active_alerts empty)."""
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import AlertCase, db_count, default_config, wait_for  # noqa: E402


class ReloadAlerts(AlertCase):
    def reload(self, gw, cfg, expect):
        """Writes cfg to the gateway's config file, sends SIGHUP and waits for the workers'
        log line `expect`; returns the log's length before, to look only at what follows."""
        before = len(gw.text())
        with open(gw.cfg_path, "w") as f:
            json.dump(cfg, f)
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rules reloaded" in gw.text()[before:], 10, "reload logged")
        if expect is not None:
            wait_for(lambda: expect in gw.text()[before:], 10, expect)
        return before

    def test_changed_limit_keeps_the_alert_and_clears_by_the_new_level(self):
        cfg = default_config(self.broker.port, self.db)
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/boiler/temp", "31").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 1, 20, "the raise")
        raised = self.events(sub)[0]
        self.assertEqual((raised["rule"], raised["state"], raised["value"], raised["threshold"]),
                         ("hot", "raised", 31, 30))

        # The limit moves from 30 to 35, the clear level from 28 to 33.
        cfg["rules"][0]["above"] = 35
        cfg["rules"][0]["clear_below"] = 33
        self.reload(gw, cfg, "reload: 1 open alerts of changed rules go on in the new rules, 0 "
                             "cleared")
        self.assertEqual(self.retained_states(pub)["iotgw/state/boiler/temp/high"]["id"],
                         raised["id"])

        # Still abnormal (above the new limit), then between the new levels: no second raise,
        # no clear. Each reading's alerts would be committed with it.
        pub.publish("sensors/boiler/temp", "36").wait_for_publish(10)
        pub.publish("sensors/boiler/temp", "34").wait_for_publish(10)
        wait_for(lambda: db_count(self.db) == 3, 20, "the readings stored")
        self.assertEqual(self.rows("SELECT state, value FROM v_alerts ORDER BY id"),
                         [("raised", 31.0)])
        self.assertEqual(self.rows("SELECT id FROM v_active_alerts"), [(raised["id"],)])

        # Below the new clear level: an ordinary clear by the new rule.
        pub.publish("sensors/boiler/temp", "32").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "the clear")
        evs = self.events(sub)
        self.assertEqual([(e["state"], e["value"], e["threshold"]) for e in evs],
                         [("raised", 31, 30), ("cleared", 32, 33)])
        self.assertEqual(evs[1]["message"], "temp of boiler is back to 32, below 33 (rule hot)")
        self.assertEqual(self.rows("SELECT count(*) FROM v_active_alerts")[0][0], 0)
        self.assertNotIn("iotgw/state/boiler/temp/high", self.retained_states(pub))
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the clear marked published")
        self.assertEqual(gw.stop(), 0)

    def test_alert_of_removed_rule_is_cleared_on_reload(self):
        cfg = default_config(self.broker.port, self.db)
        cfg["rules"].append({"name": "cold", "metric": "temp", "below": 5, "clear_above": 7})
        sub = self.client()
        sub.subscribe("iotgw/alerts/#")
        pub = self.client()
        gw = self.gateway(cfg, "gw1")
        pub.publish("sensors/tank/temp", "3").wait_for_publish(10)
        pub.publish("sensors/boiler/temp", "31").wait_for_publish(10)
        wait_for(lambda: len(self.events(sub)) >= 2, 20, "two raises")
        self.assertEqual(len(self.rows("SELECT id FROM v_active_alerts")), 2)

        # "cold" removed: its alert is cleared by the reload itself, no reading needed.
        cfg["rules"] = cfg["rules"][:1]
        self.reload(gw, cfg, "0 open alerts of changed rules go on in the new rules, 1 cleared")
        wait_for(lambda: len(self.events(sub)) >= 3, 20, "the clear on reload")
        e = self.events(sub)[2]
        self.assertEqual((e["sensor"], e["kind"], e["state"], e["rule"], e["value"], e["threshold"]),
                         ("tank", "low", "cleared", "cold", 3, 5))
        self.assertEqual(e["message"], "low alert on temp of tank cleared on reload: rule cold is "
                                       "no longer in the configuration")
        self.assertEqual(self.rows("SELECT state, message FROM v_alerts WHERE id = %d" % e["id"]),
                         [("cleared", e["message"])])
        self.assertEqual(self.rows("SELECT sensor, kind, rule FROM v_active_alerts"),
                         [("boiler", "high", "hot")])
        states = self.retained_states(pub)
        self.assertNotIn("iotgw/state/tank/temp/low", states)
        self.assertIn("iotgw/state/boiler/temp/high", states)

        # A reading of the tank raises nothing now; "hot", unchanged, keeps its alert.
        pub.publish("sensors/tank/temp", "2").wait_for_publish(10)
        pub.publish("sensors/boiler/temp", "33").wait_for_publish(10)
        wait_for(lambda: db_count(self.db) == 4, 20, "the readings stored")
        self.assertEqual(self.rows("SELECT count(*) FROM v_alerts")[0][0], 3)

        # "hot" removed as well (no rules left): v_active_alerts is empty, no state retained.
        cfg["rules"] = []
        self.reload(gw, cfg, "1 cleared")
        wait_for(lambda: len(self.events(sub)) >= 4, 20, "the second clear on reload")
        e = self.events(sub)[3]
        self.assertEqual((e["sensor"], e["kind"], e["state"], e["rule"], e["value"]),
                         ("boiler", "high", "cleared", "hot", 31))
        self.assertEqual(self.rows("SELECT count(*) FROM v_active_alerts")[0][0], 0)
        self.assertEqual(self.retained_states(pub), {})
        wait_for(lambda: self.rows("SELECT count(*) FROM alerts WHERE published = 0")[0][0] == 0,
                 20, "the clears marked published")
        self.assertEqual(gw.stop(), 0)

        # The next start has nothing left to take over or clear.
        gw = self.gateway(cfg, "gw2")
        self.assertNotIn("alerts raised by earlier runs", gw.text())
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(self.rows("SELECT count(*) FROM v_alerts")[0][0], 4)
        self.assertEqual(len(self.events(sub)), 4)


if __name__ == "__main__":
    unittest.main()
