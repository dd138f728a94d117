"""Storage faults through a real mosquitto and real SQLite files: a full database
(storage.max_size), a lock held by another writer, a read-only file, a missing directory, and a
file that is not an iotgw database. The gateway keeps running, reports the fault on the retained
<prefix>/status/storage and in its log, keeps publishing alerts (without an outbox id), holds the
readings, recovers when the fault clears and never corrupts the file."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (IOTGW, Broker, Client, Gateway, TmpDir, db_rows, default_config,  # noqa: E402
                     wait_for)


def integrity(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def values_of(db, sensor):
    try:
        return sorted(v for (v,) in db_rows(
            db, "SELECT value FROM v_readings WHERE sensor = ?", (sensor,)))
    except sqlite3.OperationalError:
        return []


class Faults(unittest.TestCase):
    def setUp(self):
        self.tmp_ctx = TmpDir()
        self.tmp = self.tmp_ctx.__enter__()
        self.broker = Broker(self.tmp).start()
        self.db = os.path.join(self.tmp, "gw.db")
        self.clients = []
        self.cleanups = []
        self.gw = None
        self.status = self.client()
        self.status.subscribe("iotgw/status/storage")
        self.alerts = self.client()
        self.alerts.subscribe("iotgw/alerts/#")
        self.pub = self.client()

    def tearDown(self):
        if self.gw is not None and self.gw.proc.poll() is None:
            self.gw.stop()
        for fn in reversed(self.cleanups):
            fn()
        for c in self.clients:
            c.close()
        self.broker.stop()
        self.tmp_ctx.__exit__(None, None, None)

    def client(self):
        c = Client(self.broker.port)
        self.clients.append(c)
        return c

    def start(self, storage, name="gw", wrapper=None):
        cfg = default_config(self.broker.port, self.db, storage=storage)
        self.gw = Gateway(self.tmp, cfg, name=name)
        if wrapper:
            self.gw.wrapper = wrapper
        return self.gw.start()

    def storage_state(self):
        msgs = [p for t, p, _ in self.status.got() if t == "iotgw/status/storage"]
        return json.loads(msgs[-1]) if msgs else None

    def wait_storage(self, state, fault=None, timeout=60):
        def cond():
            self.assertIsNone(self.gw.proc.poll(), "the gateway exited:\n" + self.gw.text())
            st = self.storage_state()
            return st if st and st["state"] == state and (fault is None or
                                                          st.get("fault") == fault) else None
        return wait_for(cond, timeout, f"storage status {state} {fault or ''}: last "
                        f"{self.storage_state()}\n" + (self.gw.text() if self.gw else ""))

    def publish(self, sensor, values):
        infos = [self.pub.publish(f"sensors/{sensor}/level", str(v)) for v in values]
        for i in infos:
            i.wait_for_publish(30)

    def raise_alert(self):
        """35 on a temp raises the rule hot (above 30); the event comes without an outbox id."""
        self.pub.publish("sensors/boiler/temp", "35").wait_for_publish(30)
        ev = wait_for(lambda: [json.loads(p) for _, p, _ in self.alerts.got()], 30,
                      "the alert during the fault")[0]
        self.assertIsNone(ev["id"])
        self.assertIs(ev["stored"], False)
        self.assertEqual((ev["sensor"], ev["kind"], ev["state"], ev["value"]),
                         ("boiler", "high", "raised", 35))
        return ev

    def assert_alert_stored_published(self):
        """The alert raised during the fault is in the outbox after recovery, published."""
        wait_for(lambda: db_rows(self.db, "SELECT count(*) FROM v_alerts WHERE sensor = 'boiler'"
                                 " AND published = 1")[0][0] == 1, 30,
                 "the alert written to the outbox and marked published")

    def finish(self):
        self.assertEqual(self.gw.stop(), 0)
        self.assertEqual(integrity(self.db), [("ok",)])
        text = self.gw.text()
        self.assertIn("storage recovered", text)
        if os.environ.get("IOTGW_SHOW_LOG"):
            print("\n" + text, file=sys.stderr)
        return text

    def test_locked_by_another_writer(self):
        self.start({"path": self.db, "busy_timeout": "300ms"})
        self.wait_storage("ok")
        self.publish("probe", range(0, 50))
        wait_for(lambda: len(values_of(self.db, "probe")) == 50, 30, "50 readings stored")
        lock = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            self.publish("probe", range(50, 150))
            st = self.wait_storage("fault", "locked")
            self.assertIn("locked", st["error"])
            self.raise_alert()
            self.publish("probe", range(150, 250))
            # Held in memory, not shed: the lock lasts a few seconds.
            wait_for(lambda: (self.storage_state() or {}).get("readings_held", 0) >= 200, 30,
                     "the readings held while locked")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        self.wait_storage("ok")
        wait_for(lambda: values_of(self.db, "probe") == list(map(float, range(250))), 30,
                 "every reading published during the lock stored")
        self.assert_alert_stored_published()
        text = self.finish()
        self.assertIn("storage fault (locked)", text)

    def test_disk_full(self):
        # 128 KiB: the schema takes some 15 pages, the filler the rest.
        self.start({"path": self.db, "max_size": 131072})
        self.wait_storage("ok")
        n = 0
        while (self.storage_state() or {}).get("state") != "fault":
            self.assertLess(n, 200000, "the database never filled up")
            self.publish("filler", range(n, n + 500))
            n += 500
            wait_for(lambda: self.storage_state()["state"] == "fault" or
                     len(values_of(self.db, "filler")) == n, 30, "the filler stored or a fault")
        st = self.wait_storage("fault", "full")
        self.assertIn("full", st["error"])
        self.raise_alert()
        self.publish("probe", range(100))
        wait_for(lambda: (self.storage_state() or {}).get("readings_held", 0) >= 100, 30,
                 "the probe readings held")
        # Another program makes room (as retention would): the gateway finds it by itself.
        con = sqlite3.connect(self.db, timeout=30)
        with con:
            sid = "(SELECT id FROM series WHERE sensor = 'filler')"
            con.execute(f"DELETE FROM readings WHERE series_id IN {sid}")
            con.execute(f"DELETE FROM readings_recent WHERE series_id IN {sid}")
        con.close()
        self.wait_storage("ok")
        wait_for(lambda: values_of(self.db, "probe") == list(map(float, range(100))), 30,
                 "the probe readings held during the fault stored")
        self.assert_alert_stored_published()
        text = self.finish()
        self.assertIn("storage fault (full)", text)
        bytes_ = db_rows(self.db, "SELECT page_count * page_size FROM pragma_page_count(), "
                         "pragma_page_size()")[0][0]
        self.assertLessEqual(bytes_, 131072)

    def make_read_only(self):
        """The database file becomes unwritable for the gateway; returns (undo, wrapper).
        chmod is enough for a normal user; root ignores file modes, so as root the file is made
        immutable (chattr +i, which binds root too), or, where the file system has no such
        attribute, the gateway runs as user nobody on a file it does not own. SQLite creates
        the -wal and -shm files with the database's mode (here when this test reads it), so
        making it writable again means all three, as an administrator would."""
        def chmod_all(mode):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.db + suffix):
                    os.chmod(self.db + suffix, mode)
        if os.geteuid() != 0:
            chmod_all(0o444)
            return (lambda: chmod_all(0o644)), None
        if shutil.which("chattr") and subprocess.run(
                ["chattr", "+i", self.db], capture_output=True).returncode == 0:
            self.cleanups.append(lambda: subprocess.run(["chattr", "-i", self.db]))
            return (lambda: subprocess.run(["chattr", "-i", self.db], check=True)), None
        wrapper = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        if shutil.which("setpriv") is None or subprocess.run(
                wrapper + ["test", "-x", IOTGW], capture_output=True).returncode != 0:
            self.skipTest("running as root, the file system has no immutable attribute, and "
                          "user nobody cannot run the gateway binary: no way to make the "
                          "database read-only for the gateway")
        os.chmod(self.tmp, 0o777)
        chmod_all(0o444)
        return (lambda: chmod_all(0o666)), wrapper

    def test_read_only_file(self):
        # A valid iotgw database, made by a first run.
        self.start({"path": self.db}, name="first")
        self.publish("probe", [-1])
        wait_for(lambda: len(values_of(self.db, "probe")) == 1, 30, "the first run's reading")
        self.assertEqual(self.gw.stop(), 0)
        self.status.messages.clear()
        undo, wrapper = self.make_read_only()
        self.start({"path": self.db}, wrapper=wrapper)
        st = self.wait_storage("fault", "read-only")
        self.assertIn("read-only", st["error"])
        self.raise_alert()
        self.publish("probe", range(50))
        wait_for(lambda: (self.storage_state() or {}).get("readings_held", 0) >= 50, 30,
                 "the readings held while read-only")
        self.assertEqual(len(values_of(self.db, "probe")), 1)
        undo()
        self.wait_storage("ok")
        self.publish("probe", range(50, 100))
        wait_for(lambda: values_of(self.db, "probe") == [-1.0] + list(map(float, range(100))),
                 30, "the held readings and the later ones stored")
        self.assert_alert_stored_published()
        text = self.finish()
        self.assertIn("storage fault (read-only)", text)

    def test_missing_directory(self):
        self.db = os.path.join(self.tmp, "not", "yet", "gw.db")
        self.start({"path": self.db})
        r = subprocess.run([IOTGW, "check", "-c", self.gw.cfg_path], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("storage.path: directory", r.stderr)
        self.assertIn("does not exist", r.stderr)
        st = self.wait_storage("fault", "unavailable")
        self.assertIn("unable to open", st["error"])
        self.assertIn("ERROR writer: storage fault (unavailable)", self.gw.text())
        self.raise_alert()
        self.publish("probe", range(50))
        wait_for(lambda: (self.storage_state() or {}).get("readings_held", 0) >= 50, 30,
                 "the readings held without a database")
        os.makedirs(os.path.dirname(self.db))
        self.wait_storage("ok")
        self.publish("probe", range(50, 100))
        wait_for(lambda: values_of(self.db, "probe") == list(map(float, range(100))), 30,
                 "the held readings and the later ones stored")
        self.assert_alert_stored_published()
        self.finish()
        stats = self.gw.final_stats()
        self.assertEqual(stats["store_failed"], 0)

    def test_not_an_iotgw_database_is_an_error(self):
        with open(self.db, "w") as f:
            f.write("not a database, but long enough to look like the header of one\n" * 4)
        gw = Gateway(self.tmp, default_config(self.broker.port, self.db)).start(
            wait_subscribed=False)
        self.assertEqual(gw.proc.wait(30), 1)
        gw.log.close()
        self.assertIn("file is not a database", gw.text())


if __name__ == "__main__":
    unittest.main()
