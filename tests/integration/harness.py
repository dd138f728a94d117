"""Test harness: a real mosquitto on a free loopback port, the real iotgw binary, real SQLite.

Every wait is on a condition with a deadline, never a fixed sleep.
"""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

IOTGW = os.environ.get("IOTGW_BIN", os.path.join(os.path.dirname(__file__), "../../build/iotgw"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=30.0, what="condition", step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Broker:
    """mosquitto with a config that never drops messages (max_queued_messages 0)."""

    def __init__(self, tmpdir, persistence=False):
        self.tmpdir = tmpdir
        self.port = free_port()
        self.conf = os.path.join(tmpdir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    f"max_queued_messages 0\nmax_inflight_messages 100\nset_tcp_nodelay true\n"
                    f"persistence {'true' if persistence else 'false'}\n"
                    f"persistence_location {tmpdir}/\n")
        self.log = open(os.path.join(tmpdir, "mosquitto.log"), "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                assert self.proc.poll() is None, "mosquitto exited at start"
                return False
        wait_for(up, 10, "mosquitto to listen")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


def default_config(broker_port, db, **over):
    cfg = {
        "gateway_id": "itest",
        "mqtt": {"host": "127.0.0.1", "port": broker_port},
        "subscriptions": [
            {"topic": "sensors/+/+", "sensor": "{1}", "metric": "{2}"},
            {"topic": "json/+", "sensor": "{1}"},
        ],
        "output": {"prefix": "iotgw"},
        "storage": {"path": db},
        "rules": [
            {"name": "hot", "sensor": "*", "metric": "temp", "above": 30, "clear_below": 28,
             "severity": "warning"},
        ],
    }
    for k, v in over.items():
        cfg[k] = v
    return cfg


class Gateway:
    def __init__(self, tmpdir, config, name="gw"):
        self.cfg_path = os.path.join(tmpdir, f"{name}.json")
        with open(self.cfg_path, "w") as f:
            json.dump(config, f)
        self.log_path = os.path.join(tmpdir, f"{name}.log")
        self.proc = None
        self.wrapper = []  # a command to run the gateway under, e.g. setpriv

    def start(self, wait_subscribed=True):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.wrapper + [IOTGW, "run", "-c", self.cfg_path, "--stats", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait_subscribed:
            wait_for(lambda: "subscribed" in self.text() or self._dead(), 15, "gateway to subscribe")
            assert self.proc.poll() is None, "gateway exited:\n" + self.text()
        return self

    def _dead(self):
        return self.proc.poll() is not None

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc

    def final_stats(self):
        m = re.search(r"final: (.*)", self.text())
        assert m, "no final stats line in the log:\n" + self.text()
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def db_rows(db, sql, args=()):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_count(db):
    try:
        return db_rows(db, "SELECT count(*) FROM v_readings")[0][0]
    except sqlite3.OperationalError:
        return -1


class Client:
    """A paho client that records what it receives."""

    def __init__(self, port, client_id=""):
        try:
            self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id)
        except AttributeError:
            self.c = mqtt.Client(client_id=client_id)
        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.max_inflight_messages_set(100)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, c, u, m):
        with self.lock:
            self.messages.append((m.topic, m.payload, m.retain))

    def subscribe(self, topic, qos=1):
        self.subscribed.clear()
        self.c.subscribe(topic, qos)
        wait_for(self.subscribed.is_set, 10, f"SUBACK for {topic}")

    def publish(self, topic, payload, qos=1, retain=False):
        return self.c.publish(topic, payload, qos=qos, retain=retain)

    def got(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class TmpDir:
    def __enter__(self):
        self.t = tempfile.TemporaryDirectory(prefix="iotgw-it-")
        return self.t.name

    def __exit__(self, *a):
        self.t.cleanup()


class AlertCase(unittest.TestCase):
    """A test case with a broker, a database path, MQTT clients and gateways that tearDown
    stops (SIGKILL if still running), and helpers to read alerts from MQTT and SQLite."""

    def setUp(self):
        self.tmp_ctx = TmpDir()
        self.tmp = self.tmp_ctx.__enter__()
        self.broker = Broker(self.tmp).start()
        self.db = os.path.join(self.tmp, "gw.db")
        self.clients = []
        self.gateways = []

    def tearDown(self):
        for gw in self.gateways:
            if gw.proc is not None and gw.proc.poll() is None:
                gw.stop(signal.SIGKILL)
        for c in self.clients:
            c.close()
        self.broker.stop()
        self.tmp_ctx.__exit__(None, None, None)

    def client(self):
        c = Client(self.broker.port)
        self.clients.append(c)
        return c

    def gateway(self, cfg, name):
        gw = Gateway(self.tmp, cfg, name=name)
        self.gateways.append(gw)
        return gw.start()

    def events(self, sub):
        """The alert documents sub received on iotgw/alerts/#, in order."""
        return [json.loads(p) for t, p, _ in sub.got() if t.startswith("iotgw/alerts/")]

    def rows(self, sql):
        return db_rows(self.db, sql)

    def retained_states(self, pub):
        """The retained state topics a new subscriber gets: a marker published after the
        subscription proves the broker has delivered everything retained before it."""
        late = self.client()
        late.subscribe("iotgw/state/#")
        late.subscribe("zz/marker")
        pub.publish("zz/marker", "m").wait_for_publish(10)
        wait_for(lambda: any(t == "zz/marker" for t, _, _ in late.got()), 10, "marker")
        return {t: json.loads(p) for t, p, r in late.got() if t.startswith("iotgw/state/") and p}
