"""Storage robustness with real SQLite files: kill -9 during heavy writes never corrupts the
database (PRAGMA integrity_check, in a loop), and what was committed before stays readable."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import IOTGW, TmpDir, wait_for  # noqa: E402


def size(db):
    """Bytes of the database and its WAL."""
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


class KillNine(unittest.TestCase):
    def test_kill_9_during_heavy_writes_never_corrupts(self):
        rounds = int(os.environ.get("IOTGW_KILL_ROUNDS", "8"))
        rnd = random.Random(1234)
        with TmpDir() as tmp:
            cap = os.path.join(tmp, "capture.txt")
            with open(cap, "w") as f:
                for i in range(400000):
                    f.write(f"sensors/s{i % 2000:04d}/temp "
                            f"{json.dumps({'ts': 1700000000000 + i * 10, 'v': i % 97})}\n")
            db = os.path.join(tmp, "k.db")
            cfg = os.path.join(tmp, "c.json")
            with open(cfg, "w") as f:
                json.dump({"storage": {"path": db, "batch_rows": 2000},
                           "windows": {"sizes": [{"size": "1s"}]},
                           "rules": [{"metric": "temp.v", "above": 90, "clear_below": 10}]}, f)
            committed = 0
            killed = 0
            for r in range(rounds):
                proc = subprocess.Popen([IOTGW, "replay", "-q", "-c", cfg, cap],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                # Kill it at a random point of its writing: once the files have grown by a
                # random number of bytes.
                target = size(db) + rnd.randint(32 << 10, 6 << 20)
                wait_for(lambda: size(db) >= target or proc.poll() is not None, 120,
                         "the database to grow")
                proc.send_signal(signal.SIGKILL)
                if proc.wait(30) == -signal.SIGKILL:
                    killed += 1
                con = sqlite3.connect(db, timeout=10)
                try:
                    self.assertEqual(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)],
                                     f"round {r}")
                    n = con.execute("SELECT count(*) FROM v_readings").fetchone()[0]
                    con.execute("SELECT count(*) FROM v_summaries").fetchone()
                    con.execute("SELECT count(*) FROM v_alerts").fetchone()
                finally:
                    con.close()
                # Readings only accumulate: what was committed before a kill is still there.
                self.assertGreaterEqual(n, committed, f"round {r}")
                committed = n
            self.assertGreater(committed, 0)
            # Most rounds must really have been cut short, or the test proves nothing.
            self.assertGreaterEqual(killed, rounds // 2, f"only {killed} of {rounds} were killed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
