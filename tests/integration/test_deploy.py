"""Deployment files (deploy/): the recommended mosquitto config with a real mosquitto, the
installed configuration, systemd unit and manual page generated in the build tree, and the
Debian maintainer scripts. The .deb itself is built and tested by deploy/package (root)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import IOTGW, TmpDir, free_port, wait_for  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(IOTGW))
GEN = os.path.join(BUILD, "deploy")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def listening(port, proc):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        assert proc.poll() is None, "mosquitto exited at start"
        return False


def client(port, client_id="", clean=True):
    kw = {"client_id": client_id, "clean_session": clean}
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kw)
    except AttributeError:
        c = mqtt.Client(**kw)
    c.max_inflight_messages_set(20)
    c.connect("127.0.0.1", port)
    return c


class MosquittoConf(unittest.TestCase):
    """deploy/mosquitto.conf, as the drop-in it is meant to be and on its own."""

    def conf_on_port(self, port):
        text = read(os.path.join(REPO, "deploy", "mosquitto.conf"))
        out, n = re.subn(r"(?m)^listener 1883 127\.0\.0\.1$", f"listener {port} 127.0.0.1", text)
        self.assertEqual(n, 1, "deploy/mosquitto.conf: one loopback listener on 1883")
        return out

    def start(self, tmp, main_conf):
        if os.geteuid() == 0:
            # As root mosquitto switches to the user mosquitto, who cannot write the private
            # temporary directory: stay root for the test.
            with open(main_conf, "a") as f:
                f.write("user root\n")
        log = open(os.path.join(tmp, "out.log"), "w")
        proc = subprocess.Popen(["mosquitto", "-c", main_conf], stdout=log,
                                stderr=subprocess.STDOUT)
        self.addCleanup(log.close)
        self.addCleanup(lambda: (proc.terminate(), proc.wait(10)))
        return proc

    def drop_in_broker(self, tmp):
        """A copy of Debian's /etc/mosquitto/mosquitto.conf with our file in its conf.d.
        Returns (port, process)."""
        port = free_port()
        os.makedirs(os.path.join(tmp, "conf.d"), exist_ok=True)
        with open(os.path.join(tmp, "conf.d", "iotgw.conf"), "w") as f:
            f.write(self.conf_on_port(port))
        main = os.path.join(tmp, "mosquitto.conf")
        with open(main, "w") as f:
            f.write(f"pid_file {tmp}/mosquitto.pid\n"
                    f"persistence true\npersistence_location {tmp}/\n"
                    f"log_dest file {tmp}/mosquitto.log\n"
                    f"include_dir {tmp}/conf.d\n")
        proc = self.start(tmp, main)
        wait_for(lambda: listening(port, proc), 10, "mosquitto to listen")
        return port, proc

    def test_recommended_settings_are_set(self):
        text = read(os.path.join(REPO, "deploy", "mosquitto.conf"))
        for line in ("max_queued_messages 0", "persistence true", "listener 1883 127.0.0.1",
                     "per_listener_settings true", "autosave_interval 300"):
            self.assertRegex(text, rf"(?m)^{re.escape(line)}$")

    def test_no_qos1_message_dropped_for_a_client_that_falls_behind(self):
        # mosquitto's default (max_queued_messages 1000) would drop most of these for the
        # offline subscriber; the recommended config keeps every one.
        n = 2500
        with TmpDir() as tmp:
            port, _ = self.drop_in_broker(tmp)
            sub = client(port, "slow-subscriber", clean=False)
            sub.loop_start()
            subscribed = []
            sub.on_subscribe = lambda *a: subscribed.append(1)
            sub.subscribe("t/#", 1)
            wait_for(lambda: subscribed, 10, "SUBACK")
            sub.disconnect()
            sub.loop_stop()

            pub = client(port)
            pub.loop_start()
            infos = [pub.publish("t/x", str(i), qos=1) for i in range(n)]
            for info in infos:
                info.wait_for_publish(30)
            pub.disconnect()
            pub.loop_stop()

            got = []
            sub = client(port, "slow-subscriber", clean=False)
            sub.on_message = lambda c, u, m: got.append(int(m.payload))
            sub.loop_start()
            wait_for(lambda: len(got) >= n, 60, f"{n} queued messages")
            sub.disconnect()
            sub.loop_stop()
            self.assertEqual(sorted(got), list(range(n)))

    def test_retained_state_survives_a_broker_restart(self):
        with TmpDir() as tmp:
            port, proc = self.drop_in_broker(tmp)
            pub = client(port)
            pub.loop_start()
            pub.publish("iotgw/status", "online", qos=1, retain=True).wait_for_publish(10)
            pub.disconnect()
            pub.loop_stop()
            # A clean stop saves the state (autosave only bounds what a power cut loses).
            proc.terminate()
            proc.wait(10)
            self.assertTrue(os.path.exists(os.path.join(tmp, "mosquitto.db")))
            port2, _ = self.drop_in_broker(tmp)
            got = []
            sub = client(port2)
            sub.on_message = lambda c, u, m: got.append(m.payload)
            sub.loop_start()
            sub.subscribe("iotgw/status", 1)
            wait_for(lambda: got, 10, "the retained status")
            sub.disconnect()
            sub.loop_stop()
            self.assertEqual(got[0], b"online")

    def test_standalone_and_lan_block(self):
        # On its own (persistence_location uncommented), with the documented LAN listener
        # uncommented, bound to a network interface other than loopback when there is one.
        ifaces = [i for i in sorted(os.listdir("/sys/class/net")) if i != "lo"]
        with TmpDir() as tmp:
            port = free_port()
            text = self.conf_on_port(port)
            text, n = re.subn(r"(?m)^#persistence_location .*$",
                              f"persistence_location {tmp}/", text)
            self.assertEqual(n, 1)
            if ifaces:
                open(os.path.join(tmp, "passwd"), "w").close()
                for old, new in ((r"#listener 1883", f"listener {port}"),
                                 (r"#bind_interface eth0", f"bind_interface {ifaces[0]}"),
                                 (r"#allow_anonymous false", "allow_anonymous false"),
                                 (r"#password_file /etc/mosquitto/passwd",
                                  f"password_file {tmp}/passwd")):
                    text, n = re.subn(rf"(?m)^{old}$", new, text)
                    self.assertEqual(n, 1, old)
            conf = os.path.join(tmp, "standalone.conf")
            with open(conf, "w") as f:
                f.write(text)
            proc = self.start(tmp, conf)
            wait_for(lambda: listening(port, proc), 10, "mosquitto to listen")


class Installed(unittest.TestCase):
    """What `cmake --install` installs, generated in the build tree."""

    def setUp(self):
        if not os.path.isdir(GEN):
            self.skipTest(f"{GEN} not generated (configure with the top-level CMakeLists.txt)")

    def test_installed_config_is_the_example_with_the_state_dir(self):
        conf = os.path.join(GEN, "iotgw.conf")
        r = subprocess.run([IOTGW, "check", "-c", conf], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = read(conf)
        m = re.search(r'"path": "(/[^"]*)/iotgw\.db"', text)
        self.assertIsNotNone(m, "storage.path is absolute")
        body = re.sub(r"\A(//[^\n]*\n)+", "", text)
        body = body.replace(m.group(0), '"path": "iotgw.db"')
        self.assertEqual(body, read(os.path.join(REPO, "deploy", "iotgw.conf")))

    def test_unit(self):
        unit = os.path.join(GEN, "iotgw.service")
        text = read(unit)
        self.assertRegex(text, r"(?m)^ExecStart=/\S+/iotgw run -c /\S+/iotgw/iotgw\.conf$")
        for d in ("User=iotgw", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                  "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                  "ProtectHome=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
                  "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes",
                  "ProtectHostname=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                  "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
                  "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
                  "SystemCallFilter=@system-service", "SystemCallArchitectures=native",
                  "CapabilityBoundingSet=", "PrivateDevices=yes", "UMask=0027"):
            self.assertRegex(text, rf"(?m)^{re.escape(d)}$")
        if shutil.which("systemd-analyze") is None:
            return
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for iotgw\.service: ([0-9.]+)", r.stdout)
        if r.returncode != 0 and m is None:
            self.skipTest(f"systemd-analyze security --offline: {r.stderr.strip()}")
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_man_page_documents_every_command_and_option(self):
        page = os.path.join(GEN, "iotgw.1")
        self.assertTrue(os.path.exists(page + ".gz"))
        text = read(page)
        top = subprocess.run([IOTGW, "--help"], capture_output=True, text=True).stdout
        commands = re.findall(r"(?m)^  ([a-z][a-z0-9-]*)  ", top)
        self.assertIn("run", commands)
        for cmd in commands:
            self.assertIn(f'.SS "iotgw {cmd}"', text)
            if cmd == "version":
                continue
            helptext = subprocess.run([IOTGW, cmd, "--help"], capture_output=True,
                                      text=True).stdout
            for opt in set(re.findall(r"--[a-z][a-z0-9-]*", helptext)):
                self.assertIn(opt.replace("-", "\\-"), text, f"iotgw {cmd} {opt}")
        if shutil.which("man") is None:
            return
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page],
                           capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")


class MaintainerScripts(unittest.TestCase):
    def test_posix_sh_syntax_and_mode(self):
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(REPO, "deploy", "debian", name)
            self.assertTrue(os.access(path, os.X_OK), name)
            self.assertTrue(read(path).startswith("#!/bin/sh\n"), name)
            r = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
