"""A minimal MQTT 3.1.1 publisher on a raw socket, for the benchmarks (deploy/bench).

Python's paho client hands every publish to its network thread; here the caller's thread
writes the packets itself, so that a publisher can offer a million messages in a few seconds
(QoS0: prebuilt packets, one sendall per chunk) or send each message at a known instant
(latency benchmark). QoS1 keeps a bounded window of unacknowledged messages; a reader
thread counts the PUBACKs.
"""
import socket
import struct
import threading


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def publish_packet(topic, payload, qos=0, pid=0):
    t = topic.encode() if isinstance(topic, str) else topic
    p = payload.encode() if isinstance(payload, str) else payload
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", pid) if qos else b"") + p
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


class RawPublisher:
    def __init__(self, port, client_id, host="127.0.0.1", window=10000, keepalive=120):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        vh = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)
        pl = struct.pack("!H", len(cid)) + cid
        self.sock.sendall(b"\x10" + _varint(len(vh) + len(pl)) + vh + pl)
        ack = self._recv_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"CONNACK refused: {ack!r}")
        self.sock.settimeout(None)
        self.window = window
        self.sent1 = 0
        self.acked = 0
        self.cv = threading.Condition()
        self.closed = False
        self.reader = None
        self.next_pid = 1

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def _read_loop(self):
        """Counts PUBACKs (4 bytes each: 0x40 0x02 id id); the broker sends nothing else."""
        pending = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                pending += data
                n = len(pending) // 4
                if n:
                    pending = pending[n * 4:]
                    with self.cv:
                        self.acked += n
                        self.cv.notify_all()
        except OSError:
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def send_qos0(self, data):
        """Sends prebuilt QoS0 packets (bytes)."""
        self.sock.sendall(data)

    def send_qos1(self, messages, chunk=1000):
        """Publishes (topic, payload) pairs at QoS1, at most `window` unacknowledged."""
        if self.reader is None:
            self.reader = threading.Thread(target=self._read_loop, daemon=True)
            self.reader.start()
        buf = []
        for topic, payload in messages:
            buf.append(publish_packet(topic, payload, 1, self.next_pid))
            self.next_pid = self.next_pid % 65535 + 1
            if len(buf) >= chunk:
                self._flush1(buf)
                buf = []
        if buf:
            self._flush1(buf)

    def _flush1(self, buf):
        with self.cv:
            while self.sent1 + len(buf) - self.acked > self.window and not self.closed:
                self.cv.wait(1.0)
            if self.closed:
                raise ConnectionError("broker closed the connection")
        self.sock.sendall(b"".join(buf))
        with self.cv:
            self.sent1 += len(buf)

    def wait_acked(self, timeout=60.0):
        with self.cv:
            return self.cv.wait_for(lambda: self.acked >= self.sent1 or self.closed, timeout)

    def close(self):
        try:
            self.sock.sendall(b"\xe0\x00")
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if self.reader is not None:
            self.reader.join(5)
        self.sock.close()
