"""MQTT robustness against a real mosquitto (persistence on, max_queued_messages 0): broker
restarts during a QoS1 stream, gateway restarts, TLS and passwords, no broker at start, stats.

Waits are on conditions with deadlines; the one fixed measurement window is the CPU-time
sample of the no-broker test (a resource bound, not a timing of speed)."""
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Gateway, TmpDir, db_count, db_rows, default_config, free_port,  # noqa: E402
                     wait_for)

import paho.mqtt.client as mqtt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from mqtt_raw import publish_packet  # noqa: E402

# The broker-restart stream: IOTGW_MQTT_STREAM_N readings (default 200 000, the size the
# issue asks for; about 15 s on a 2-core machine). The gateway-restart tests publish
# GW_RESTART_N messages with the paho client.
STREAM_N = int(os.environ.get("IOTGW_MQTT_STREAM_N", "200000"))
GW_RESTART_N = 2500
STREAM_TS0 = 1700000000000  # ts of message 0 in ms; message i has ts STREAM_TS0 + i


def stream_message(i):
    """Message i of the broker-restart stream: a level reading of sensor sNN with value i, or,
    every 500th, a boiler temp alternating 35 / 25 (raises and clears alerts). Each has its
    own ts, so (sensor, metric, ts, value) identifies it."""
    ts = STREAM_TS0 + i
    if i % 500 == 499:
        hot = (i // 2000) % 2 == 0
        return f"json/boiler{(i // 500) % 4}", f'{{"ts":{ts},"temp":{35 if hot else 25}}}'
    return f"json/s{i % 50:02d}", f'{{"ts":{ts},"level":{i}}}'


def index_ranges(indexes, gap=1000):
    """Sorted indexes as 'first-last (count)' runs, for the report of a run."""
    runs = []
    for i in sorted(indexes):
        if runs and i - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], i, runs[-1][2] + 1)
        else:
            runs.append((i, i, 1))
    return ", ".join(f"{a}-{b} ({c})" for a, b, c in runs)


def alert_ids(msgs):
    """The ids of the alert messages, and the messages that are not an alert document (a
    payload that is not JSON, not even UTF-8, was seen once in 13 runs)."""
    ids, bad = [], []
    for topic, payload in msgs:
        try:
            ids.append(json.loads(payload)["id"])
        except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
            bad.append((topic, payload[:80]))
    return ids, bad


def stream_identity(i):
    """(sensor, metric, ts_ms, value) of message i, as in v_readings."""
    if i % 500 == 499:
        return (f"boiler{(i // 500) % 4}", "temp", STREAM_TS0 + i,
                35.0 if (i // 2000) % 2 == 0 else 25.0)
    return (f"s{i % 50:02d}", "level", STREAM_TS0 + i, float(i))


class Broker:
    """mosquitto that can be stopped (SIGTERM or SIGKILL) and started again on the same port,
    with persistence on, so that sessions and queued QoS1 messages survive an orderly
    restart."""

    def __init__(self, tmpdir, port=None, extra="", listener=None, name="mosquitto"):
        self.tmpdir = tmpdir
        self.port = port or free_port()
        self.conf = os.path.join(tmpdir, f"{name}.conf")
        self.log_path = os.path.join(tmpdir, f"{name}.log")
        pdir = os.path.join(tmpdir, f"{name}-data")
        os.makedirs(pdir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(f"per_listener_settings false\n"
                    f"{listener or f'listener {self.port} 127.0.0.1'}\n"
                    f"max_queued_messages 0\nmax_inflight_messages 100\nset_tcp_nodelay true\n"
                    f"persistence true\npersistence_location {pdir}/\nautosave_interval 1\n"
                    f"{extra}")
            # As root, mosquitto drops to its own user, which cannot write the persistence
            # files into the test's private directory (nor read the password file).
            if os.geteuid() == 0:
                f.write("user root\n")
        if "allow_anonymous" not in extra:
            with open(self.conf, "a") as f:
                f.write("allow_anonymous true\n")
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                assert self.proc.poll() is None, "mosquitto exited at start:\n" + self.text()
                return False
        wait_for(up, 10, "mosquitto to listen")
        return self

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"mosquitto did not stop within 30 s of {sig!r}")
        if self.log:
            self.log.close()
            self.log = None


def paho_client(client_id, clean):
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id,
                        clean_session=clean)
    except AttributeError:
        c = mqtt.Client(client_id=client_id, clean_session=clean)
    c.max_inflight_messages_set(100)
    c.reconnect_delay_set(0.1, 1)
    return c


class Subscriber:
    """A persistent-session subscriber that survives broker restarts."""

    def __init__(self, port, topic, client_id, qos=1):
        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = paho_client(client_id, False)
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        wait_for(self.subscribed.is_set, 10, f"SUBACK for {topic}")

    def _on_message(self, c, u, m):
        with self.lock:
            self.messages.append((m.topic, m.payload))

    def got(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Stream:
    """Publishes value i on sensors/sNN/level for i in [0, n), QoS 2 to the broker so that the
    publisher-to-broker leg adds no duplicates of its own (the broker delivers QoS1 to the
    gateway). Every 500th message is a temp reading alternating 35 / 25 on one of four
    boilers, which raises and clears alerts. The client reconnects and resends what was not
    acknowledged (persistent session)."""

    def __init__(self, port, n, client_id="itest-stream"):
        self.n = n
        self.c = paho_client(client_id, False)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.infos = []
        self.sent = 0
        self.stopping = threading.Event()
        # A daemon thread, and one that gives up at a deadline: a publisher still waiting
        # for a PUBACK must not keep the test process alive after a failure.
        self.th = threading.Thread(target=self._run, daemon=True, name="stream")

    def start(self):
        self.th.start()
        return self

    def _run(self):
        hot = {}
        deadline = time.monotonic() + 300
        for i in range(self.n):
            if i % 500 == 499:
                b = (i // 500) % 4
                hot[b] = not hot.get(b, False)
                topic, payload = f"sensors/boiler{b}/temp", "35" if hot[b] else "25"
            else:
                topic, payload = f"sensors/s{i % 50:02d}/level", str(i)
            self.infos.append(self.c.publish(topic, payload, qos=2))
            self.sent = i + 1
            # Keep paho's own queue short so that the stream follows the broker's pace.
            while i - 2000 > 0 and not self.infos[i - 2000].is_published():
                if self.stopping.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.001)

    def acked(self):
        return sum(1 for i in self.infos[:] if i.is_published())

    def wait_all(self, timeout):
        self.th.join(timeout)
        wait_for(lambda: self.acked() == self.n, timeout, "every message acknowledged")

    def close(self):
        self.stopping.set()
        self.th.join(10)
        self.c.loop_stop()
        self.c.disconnect()


class AckedStream:
    """The stream of the broker-restart test: an MQTT 3.1.1 publisher on a raw socket (the
    paho Python client managed a few hundred messages a second and once stalled for good
    after a broker restart). QoS1, a persistent session, at most `window` messages without a
    PUBACK. Message i is make(i) -> (topic, payload). After a lost connection it connects
    again (every 50 ms) and first sends again, with the DUP flag and the same packet id,
    every message not acknowledged yet, oldest first: at least once, as a QoS1 client must.

    acked[i] is 1 once the broker acknowledged message i: that is what "published" means.
    `limit` holds back the messages from that index on (the test moves it forward so that
    the broker is killed while messages are in flight). Everything runs on one daemon thread
    with a deadline; `error` says why it stopped early."""

    def __init__(self, port, n, make, client_id="itest-stream", window=2000, timeout=300):
        self.port = port
        self.n = n
        self.make = make
        self.client_id = client_id.encode()
        self.window = window
        self.deadline = time.monotonic() + timeout
        self.acked = bytearray(n)
        self.n_acked = 0
        self.next = 0          # the next message never sent
        self.limit = n         # messages from this index on wait
        self.pending = {}      # packet id -> message index, oldest first
        self.next_pid = 1
        self.connects = 0
        self.resent = 0        # messages sent again after a reconnect
        self.resent_ranges = []  # (first, last) index sent again at each reconnect
        self.error = None
        self.stopping = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True, name="acked-stream")

    def start(self):
        self.th.start()
        return self

    def _packet(self, i, pid, dup):
        topic, payload = self.make(i)
        pkt = bytearray(publish_packet(topic, payload, 1, pid))
        if dup:
            pkt[0] |= 0x08
        return pkt

    def _connect(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Protocol level 4 (3.1.1), clean session 0, keepalive 600 s.
            vh = b"\x00\x04MQTT\x04\x00" + struct.pack("!H", 600)
            body = vh + struct.pack("!H", len(self.client_id)) + self.client_id
            sock.sendall(b"\x10" + bytes([len(body)]) + body)
            ack = b""
            while len(ack) < 4:
                chunk = sock.recv(4 - len(ack))
                if not chunk:
                    raise ConnectionError("closed before CONNACK")
                ack += chunk
            if ack[0] != 0x20 or ack[3] != 0:
                raise ConnectionError(f"CONNACK {ack!r}")
        except OSError:
            sock.close()
            return None
        self.connects += 1
        return sock

    def _session(self, sock):
        sock.setblocking(False)
        out = bytearray()
        for pid, i in self.pending.items():
            out += self._packet(i, pid, True)
            self.resent += 1
        if self.pending:
            self.resent_ranges.append((min(self.pending.values()), max(self.pending.values())))
        inbuf = bytearray()
        while self.n_acked < self.n and not self.stopping.is_set():
            if time.monotonic() > self.deadline:
                return
            while (len(self.pending) < self.window and self.next < min(self.n, self.limit)
                   and len(out) < 65536):
                while self.next_pid in self.pending:
                    self.next_pid = self.next_pid % 65535 + 1
                pid = self.next_pid
                self.next_pid = pid % 65535 + 1
                self.pending[pid] = self.next
                out += self._packet(self.next, pid, False)
                self.next += 1
            r, w, _ = select.select([sock], [sock] if out else [], [], 0.1)
            if w:
                del out[:sock.send(out)]
            if r:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the broker closed the connection")
                inbuf += data
                self._read_acks(inbuf)

    def _read_acks(self, buf):
        """Consumes the complete packets at the start of buf; counts the PUBACKs."""
        off = 0
        while True:
            length, shift, k = 0, 0, off + 1
            while True:  # the remaining length: 7 bits a byte, low bits first
                if k >= len(buf):
                    del buf[:off]
                    return
                length |= (buf[k] & 0x7F) << shift
                shift += 7
                k += 1
                if not buf[k - 1] & 0x80:
                    break
            if len(buf) - k < length:
                del buf[:off]
                return
            if buf[off] >> 4 == 4 and length == 2:
                i = self.pending.pop(struct.unpack_from("!H", buf, k)[0], None)
                if i is not None and not self.acked[i]:
                    self.acked[i] = 1
                    self.n_acked += 1
            off = k + length

    def _run(self):
        try:
            while self.n_acked < self.n and not self.stopping.is_set():
                if time.monotonic() > self.deadline:
                    raise TimeoutError(f"{self.n_acked} of {self.n} acknowledged at the deadline")
                sock = self._connect()
                if sock is None:
                    self.stopping.wait(0.05)
                    continue
                try:
                    self._session(sock)
                except OSError:
                    pass  # connection lost (ConnectionError is an OSError): connect again
                finally:
                    sock.close()
        except Exception as e:  # reported by wait_all
            self.error = e

    def wait_acked(self, count, timeout, what):
        wait_for(lambda: self.n_acked >= count or self.error or not self.th.is_alive(), timeout,
                 f"{what} ({self.n_acked} of {self.n} acknowledged)")
        if self.n_acked < count:
            raise AssertionError(f"the stream stopped at {self.n_acked} of {self.n} "
                                 f"acknowledged: {self.error!r}")

    def close(self):
        self.stopping.set()
        self.th.join(10)


def stream_config(port, db, **over):
    cfg = default_config(port, db, **over)
    cfg["pipeline"] = dict({"overflow": "block"}, **cfg.get("pipeline", {}))
    cfg["output"] = {"prefix": "iotgw", "stats_interval": "1s"}
    return cfg


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based); fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MqttTests(unittest.TestCase):
    def setUp(self):
        self.tmp_ctx = TmpDir()
        self.tmp = self.tmp_ctx.__enter__()
        self.db = os.path.join(self.tmp, "gw.db")
        self.cleanup = []

    def tearDown(self):
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception as e:  # keep tearing down
                print("teardown:", e)
        self.tmp_ctx.__exit__(None, None, None)

    def broker(self, **kw):
        b = Broker(self.tmp, **kw).start()
        self.cleanup.append(b.stop)
        return b

    def gateway(self, cfg, name="gw", wait=True):
        gw = Gateway(self.tmp, cfg, name)
        gw.start(wait_subscribed=wait)
        self.cleanup.append(lambda: gw.stop(signal.SIGKILL) if gw.proc.poll() is None else None)
        return gw

    def check_stream_stored(self, n):
        rows = db_rows(self.db, "SELECT count(*), count(DISTINCT value) FROM v_readings "
                                "WHERE metric = 'level'")
        boilers = db_count(self.db) - rows[0][0]
        return rows[0], boilers

    # (a) The broker killed (SIGTERM: it saves its persistence file) and restarted three
    # times during a QoS1 stream of STREAM_N readings, each with its own ts, so that every
    # reading has its own identity (sensor, metric, ts, value).
    def test_broker_restarts_lose_and_duplicate_nothing(self):
        b = self.broker()
        gw = self.gateway(stream_config(b.port, self.db))
        alerts = Subscriber(b.port, "iotgw/alerts/#", "itest-alerts")
        self.cleanup.append(alerts.close)
        stats = Subscriber(b.port, "iotgw/stats", "itest-stats")
        self.cleanup.append(stats.close)
        n = STREAM_N
        t0 = time.monotonic()
        # Published after the gateway's first subscription: every one must be stored.
        s = AckedStream(b.port, n, stream_message)
        self.cleanup.append(s.close)
        restarts = []
        at_kill = []
        kills = (0.2, 0.45, 0.7)
        # The publisher may run ahead of the restarts by 5% of the stream, no more: each kill
        # happens with messages in flight, never after the stream is through.
        s.limit = int(n * (kills[0] + 0.05))
        s.start()
        for k, frac in enumerate(kills):
            s.wait_acked(int(n * frac), 120, f"{frac:.0%} of the stream acknowledged")
            r0 = time.monotonic()
            newest = db_rows(self.db, "SELECT max(ts_ms) FROM v_readings")[0][0]
            at_kill.append(-1 if newest is None else newest - STREAM_TS0)
            b.stop(signal.SIGTERM)
            b.start()
            try:
                # Both connections: the subscriptions and the publishing one.
                wait_for(lambda: min(gw.text().count(f"reconnected to tcp://127.0.0.1:{b.port} "
                                                     f"({role})")
                                     for role in ("subscriptions", "publishing")) >= k + 1, 60,
                         f"the gateway to reconnect after broker restart {k + 1}")
            except AssertionError:
                mqtt_lines = [ln for ln in gw.text().splitlines() if " mqtt: " in ln]
                print("\nDIAG gateway mqtt log:\n" + "\n".join(mqtt_lines[-20:]) +
                      "\nDIAG broker log:\n" + "\n".join(b.text().splitlines()[-40:]))
                raise
            restarts.append(time.monotonic() - r0)
            s.limit = int(n * (kills[k + 1] + 0.05)) if k + 1 < len(kills) else n
        s.wait_acked(n, 120, "every message acknowledged")
        t_pub = time.monotonic() - t0

        def stored_identities():
            return db_rows(self.db, "SELECT count(*) FROM (SELECT DISTINCT sensor, metric, "
                                    "ts_ms, value FROM v_readings)")[0][0]
        try:
            wait_for(lambda: stored_identities() >= n, 120,
                     f"the gateway to store the {n} readings acknowledged by the broker",
                     step=0.25)
        except AssertionError:
            print("\nDIAG stored", stored_identities(), "of", n, "\n", gw.text()[-2500:])
            raise
        t_stored = time.monotonic() - t0
        wait_for(lambda: db_rows(self.db, "SELECT count(*) FROM v_alerts WHERE published = 0")
                 [0][0] == 0, 60, "the outbox to be empty")
        # A stats document published after everything was stored: its redelivery count is
        # final (nothing arrives any more).
        n_stats = len(stats.got())
        wait_for(lambda: len(stats.got()) > n_stats, 10, "a stats document after the stream")
        doc = json.loads(stats.got()[-1][1])
        # Both connections are back after the last restart: the retained status says so.
        status = Subscriber(b.port, "iotgw/status", "itest-status")
        self.cleanup.append(status.close)
        wait_for(lambda: status.got(), 10, "the retained status")
        self.assertEqual(status.got()[-1][1], b"online")
        self.assertEqual(gw.stop(), 0)
        st = gw.final_stats()

        rows = db_rows(self.db, "SELECT sensor, metric, ts_ms, value, count(*) FROM v_readings "
                                "GROUP BY sensor, metric, ts_ms, value")
        got = {(r[0], r[1], r[2], r[3]): r[4] for r in rows}
        want = {stream_identity(i) for i in range(n)}
        missing = sorted(want - got.keys())
        extra = sorted(got.keys() - want)
        twice = sorted((k, c) for k, c in got.items() if c > 1)
        ts_twice = [k[2] - STREAM_TS0 for k, _ in twice]
        resent = ", ".join(f"{a}-{b}" for a, b in s.resent_ranges)
        # A reading stored twice is either one the publisher sent again after a restart (the
        # broker had taken it but its PUBACK was lost; the copy reaches the gateway as a new
        # message, without DUP) or one the broker redelivered to the gateway (with DUP) that
        # the gateway no longer remembered.
        by_pub = sum(1 for i in ts_twice if any(a <= i <= b for a, b in s.resent_ranges))
        print(f"\n  stream of {n} QoS1 readings, 3 broker restarts (SIGTERM): all acknowledged "
              f"after {t_pub:.1f} s ({n / t_pub:.0f} msgs/s), all stored after {t_stored:.1f} s; "
              f"broker restart to gateway reconnected: "
              f"{', '.join(f'{r:.1f}' for r in restarts)} s")
        print(f"  publisher: {s.connects} connects, {s.resent} messages resent (DUP) after a "
              f"broker restart; gateway: {doc['messages_in']} messages in, "
              f"{doc['redeliveries_dropped']} DUP redeliveries dropped, "
              f"{doc['redeliveries_stored_only']} stored without the rules")
        print(f"  stored: {sum(got.values())} rows, {len(got)} distinct readings; missing "
              f"{len(missing)} {missing[:5]}; not published {len(extra)} {extra[:5]}; stored "
              f"more than once {len(twice)} (stream indexes {index_ranges(ts_twice)}; "
              f"{by_pub} of them resent by the publisher, {len(twice) - by_pub} redelivered "
              f"by the broker); the publisher resent {resent}; the gateway had stored up to "
              f"index {', '.join(str(x) for x in at_kill)} at the kills")
        self.assertEqual(st["ingest_dropped"], 0)

        # Every alert raised reached the subscriber at least once; ids let it drop duplicates.
        ids = {r[0] for r in db_rows(self.db, "SELECT id FROM v_alerts")}
        self.assertGreater(len(ids), 0)
        try:
            wait_for(lambda: ids <= set(alert_ids(alerts.got())[0]), 30,
                     f"every one of the {len(ids)} alerts at the subscriber")
        finally:
            got_ids, bad = alert_ids(alerts.got())
            print(f"  alerts: {len(ids)} raised/cleared, {len(got_ids)} received "
                  f"({len(got_ids) - len(set(got_ids))} duplicates, dropped by id), "
                  f"{len(ids - set(got_ids))} missing, {len(bad)} not an alert {bad[:3]}")
        self.assertEqual(bad, [], "alert messages that are not an alert document")
        # Each boiler reading flips its boiler between 35 and 25: one transition each, no more.
        # A redelivered reading fed to the rules again, out of order, would add transitions.
        self.assertEqual(len(ids), n // 500, "alert transitions: one per boiler reading")
        # Stats were published as JSON.
        for key in ("messages_in", "readings", "decode_errors", "late_readings", "queues",
                    "ingest_dropped", "alerts", "alerts_published", "outbox_backlog",
                    "db_bytes", "redeliveries_dropped"):
            self.assertIn(key, doc)
        self.assertGreater(doc["db_bytes"], 0)
        self.assertIn("hwm", doc["queues"][0])

        # Every reading published (acknowledged by the broker: all n by now) is in SQLite,
        # exactly once.
        self.assertEqual(s.n_acked, n)
        self.assertEqual(len(missing), 0, f"acknowledged readings missing from SQLite, e.g. "
                                          f"{missing[:5]}")
        self.assertEqual(len(extra), 0, f"readings in SQLite never published, e.g. {extra[:5]}")
        self.assertEqual(len(twice), 0, f"readings stored more than once, e.g. {twice[:5]}")

    # (b)
    def run_gateway_restart(self, sig):
        b = self.broker()
        cfg = stream_config(b.port, self.db)
        cfg["pipeline"].update({"queue_items": 256, "workers": 2})
        gw = self.gateway(cfg)
        n = GW_RESTART_N
        s = Stream(b.port, n).start()
        self.cleanup.append(s.close)
        wait_for(lambda: db_count(self.db) > n // 4, 120, "the stream to flow")
        gw.stop(sig)
        gw2 = self.gateway(cfg, name="gw2")
        s.wait_all(120)
        levels = n - n // 500
        # After the restart the broker delivers what it queued while the gateway was away.
        if sig == signal.SIGTERM:
            wait_for(lambda: self.check_stream_stored(n)[0][0] >= levels, 120,
                     "every level reading")
        else:
            # The readings lost are the ones the first gateway acknowledged and had not
            # committed: wait until the second one has taken everything queued.
            wait_for(lambda: s.acked() == n, 60, "the stream acknowledged")
            last = str(n - 1 if (n - 1) % 500 != 499 else n - 2)
            wait_for(lambda: db_rows(self.db, "SELECT count(*) FROM v_readings WHERE value = ?",
                                     (float(last),))[0][0] > 0, 120, "the last reading")
        self.assertEqual(gw2.stop(), 0)
        (count, distinct), _ = self.check_stream_stored(n)
        # Known limit (docs/mqtt.md): these payloads carry no ts, so a message taken just
        # before the DISCONNECT whose PUBACK did not reach the broker, redelivered to the new
        # process, gets a new arrival time and is a new reading to the storage (with a ts it
        # would be skipped, as the broker-restart test shows). Seen: 0 in recent runs.
        print(f"\n  restart with {sig!r}: {count - distinct} readings stored twice")
        self.assertLessEqual(count - distinct, 100)
        return levels - distinct, cfg

    def test_gateway_sigterm_restart_loses_nothing(self):
        lost, _ = self.run_gateway_restart(signal.SIGTERM)
        self.assertEqual(lost, 0)

    def test_gateway_sigkill_loss_is_bounded_by_the_queues(self):
        lost, cfg = self.run_gateway_restart(signal.SIGKILL)
        q = cfg["pipeline"]["queue_items"]
        w = cfg["pipeline"]["workers"]
        # Acknowledged but not committed: the ingest queue (messages), the worker and writer
        # queues (batches of up to 128 readings) and the open transaction (batch_rows, 5000).
        bound = q + (w + 1) * q * 128 + 5000
        print(f"\n  SIGKILL: {lost} acknowledged readings lost (bound {bound})")
        self.assertGreaterEqual(lost, 0)
        self.assertLessEqual(lost, bound)

    # (c)
    def make_pki(self):
        d = os.path.join(self.tmp, "pki")
        os.makedirs(d)

        def ossl(*args):
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

        for ca in ("ca", "other-ca"):
            ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 f"/CN=iotgw test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for who in ("server", "client"):
            ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                 "-keyout", f"{who}.key", "-out", f"{who}.csr")
            ossl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{who}.pem")
        os.chmod(os.path.join(d, "server.key"), 0o644)  # mosquitto may run as another user
        return d

    def tls_broker(self, pki, extra=""):
        port = free_port()
        listener = (f"listener {port} 127.0.0.1\ncafile {pki}/ca.pem\ncertfile {pki}/server.pem\n"
                    f"keyfile {pki}/server.key\nrequire_certificate true\n")
        return self.broker(port=port, listener=listener, extra=extra, name="tls")

    def tls_config(self, b, pki, ca="ca.pem", **mqtt_over):
        cfg = default_config(b.port, self.db)
        cfg["mqtt"].update({"tls": {"ca_file": f"{pki}/{ca}", "cert_file": f"{pki}/client.pem",
                                    "key_file": f"{pki}/client.key"}}, **mqtt_over)
        return cfg

    def test_tls_connects_and_bad_ca_or_password_are_reported(self):
        pki = self.make_pki()
        pwfile = os.path.join(self.tmp, "mosq.passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pwfile, "gw", "s3cret"], check=True)
        os.chmod(pwfile, 0o644)
        b = self.tls_broker(pki, extra=f"allow_anonymous false\npassword_file {pwfile}\n")
        good_pw = os.path.join(self.tmp, "good.pw")
        with open(good_pw, "w") as f:
            f.write("s3cret\n")
        os.chmod(good_pw, 0o600)
        gw = self.gateway(self.tls_config(b, pki, username="gw", password_file=good_pw))
        self.assertIn("ssl://", gw.text())
        self.assertEqual(gw.stop(), 0)

        # A CA that did not sign the broker's certificate.
        gw = self.gateway(self.tls_config(b, pki, ca="other-ca.pem", username="gw",
                                          password_file=good_pw), name="badca", wait=False)
        wait_for(lambda: "cannot connect" in gw.text(), 20, "the connect failure")
        print("\n  wrong CA:", gw.text().strip().splitlines()[-1])
        self.assertRegex(gw.text(), r"TLS|certificate|SSL")
        self.assertIsNone(gw.proc.poll(), "the gateway keeps retrying")
        gw.stop()

        # A wrong password, from the environment.
        os.environ["IOTGW_MQTT_PASSWORD"] = "wrong"
        try:
            gw = self.gateway(self.tls_config(b, pki, username="gw"), name="badpw", wait=False)
        finally:
            del os.environ["IOTGW_MQTT_PASSWORD"]
        wait_for(lambda: "cannot connect" in gw.text(), 20, "the connect failure")
        print("  bad password:", gw.text().strip().splitlines()[-1])
        self.assertRegex(gw.text(), r"(?i)bad user name or password|not authori[sz]ed")
        gw.stop()

        # A password file others can read is refused before connecting.
        loose = os.path.join(self.tmp, "loose.pw")
        with open(loose, "w") as f:
            f.write("s3cret\n")
        os.chmod(loose, 0o644)
        gw = self.gateway(self.tls_config(b, pki, username="gw", password_file=loose),
                          name="loose", wait=False)
        rc = gw.proc.wait(30)
        gw.log.close()
        self.assertNotEqual(rc, 0)
        self.assertIn("readable by group or others", gw.text())

    # (d)
    def test_no_broker_at_start_retries_without_spinning(self):
        port = free_port()
        gw = self.gateway(default_config(port, self.db), wait=False)
        wait_for(lambda: "retrying in" in gw.text(), 20, "the first retry")
        c0 = cpu_seconds(gw.proc.pid)
        time.sleep(5)  # the measurement window of a resource bound
        used = cpu_seconds(gw.proc.pid) - c0
        print(f"\n  CPU time while waiting for a broker: {used:.3f} s in 5 s")
        self.assertLess(used, 0.5)
        self.assertIsNone(gw.proc.poll())
        b = self.broker(port=port)
        wait_for(lambda: "subscribed" in gw.text(), 40, "the gateway to connect")
        c = paho_client("", True)
        c.connect("127.0.0.1", b.port)
        c.loop_start()
        c.publish("sensors/late/level", "1.5", qos=1).wait_for_publish(10)
        c.loop_stop()
        c.disconnect()
        wait_for(lambda: db_count(self.db) == 1, 20, "the reading stored")
        self.assertEqual(gw.stop(), 0)

    def test_v311_session_survives_broker_restart(self):
        b = self.broker()
        cfg = default_config(b.port, self.db)
        cfg["mqtt"]["version"] = 3
        gw = self.gateway(cfg)
        b.stop(signal.SIGTERM)
        b.start()
        wait_for(lambda: "reconnected to" in gw.text(), 30, "the gateway to reconnect")
        c = paho_client("", True)
        c.connect("127.0.0.1", b.port)
        c.loop_start()
        c.publish("sensors/v3/level", "2.5", qos=1).wait_for_publish(10)
        c.loop_stop()
        c.disconnect()
        wait_for(lambda: db_count(self.db) == 1, 20, "the reading stored")
        self.assertEqual(gw.stop(), 0)

    def test_status_says_offline_while_the_subscriptions_are_lost(self):
        """Another client taking the subscriptions' client id makes the broker drop that
        connection only: the gateway says `offline` through its publishing connection, then
        `online` again once paho has reconnected the subscriptions (which takes the id back)."""
        b = self.broker()
        gw = self.gateway(stream_config(b.port, self.db))
        status = Subscriber(b.port, "iotgw/status", "itest-status")
        self.cleanup.append(status.close)
        wait_for(lambda: status.got(), 10, "the retained status")
        self.assertEqual(status.got()[-1][1], b"online")
        thief = paho_client("iotgw-itest", False)
        thief.connect("127.0.0.1", b.port)
        thief.loop_start()
        wait_for(lambda: b"offline" in [p for _, p in status.got()], 20, "status offline")
        # No reconnecting back and forth: the thief goes once it has made its point.
        thief.loop_stop()
        thief.disconnect()
        wait_for(lambda: "reconnected to" in gw.text(), 30, "the subscriptions to come back")
        wait_for(lambda: status.got()[-1][1] == b"online", 20, "status online again")
        self.assertIn("lost (subscriptions)", gw.text())
        self.assertEqual(gw.stop(), 0)

    def test_shared_subscription_splits_the_stream(self):
        """Two gateways in one $share group: the broker gives each message to one of them, so
        together they store every reading once; key affinity (docs/mqtt.md) is the broker's
        choice, so a series may be split between them."""
        b = self.broker()
        n = 2000
        sub = [{"topic": "$share/iotgw/sensors/+/+", "sensor": "{1}", "metric": "{2}"}]
        dbs = [os.path.join(self.tmp, f"share{i}.db") for i in range(2)]
        gws = [self.gateway(default_config(b.port, db, gateway_id=f"share{i}",
                                           subscriptions=sub), name=f"share{i}")
               for i, db in enumerate(dbs)]
        c = paho_client("", True)
        c.connect("127.0.0.1", b.port)
        c.loop_start()
        infos = [c.publish(f"sensors/sh{i % 20:02d}/level", str(i), qos=1) for i in range(n)]
        for info in infos:
            info.wait_for_publish(30)
        c.loop_stop()
        c.disconnect()
        wait_for(lambda: sum(db_count(db) for db in dbs) >= n, 60, "both gateways to store")
        for gw in gws:
            self.assertEqual(gw.stop(), 0)
        values = [sorted(r[0] for r in db_rows(db, "SELECT value FROM v_readings")) for db in dbs]
        print(f"\n  $share: {len(values[0])} + {len(values[1])} readings of {n}")
        self.assertEqual(sorted(values[0] + values[1]), [float(i) for i in range(n)])
        self.assertGreater(len(values[0]), 0)
        self.assertGreater(len(values[1]), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
