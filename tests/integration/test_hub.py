"""guestd-hub against real guestd agents on unix sockets: the static list,
request forwarding with id routing for clients at once, watch fan-out, a
client that leaves mid-request, a guest that goes and comes back, glob
discovery, the configuration's exit statuses and guestctl --hub."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, scaled  # noqa: E402
from hubhost import GUESTCTL, HUB, Hub  # noqa: E402

# health.max_rss_bytes: an agent under valgrind passes the 64 MiB default.
FAST = ("--set", "metrics.interval_ms=200", "--set", "health.interval_ms=500",
        "--set", "commands.max_concurrent=32", "--set", "health.max_rss_bytes=4294967296")


def echo(c, guest, rid, text):
    c.send({"guest": guest, "id": rid, "cmd": "exec", "args": {"argv": ["echo", text]}})


class StaticGuests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Agent(*FAST)
        cls.b = Agent(*FAST)
        cls.hub = Hub("guests.alpha=" + cls.a.sock, "guests.beta=" + cls.b.sock)
        cls.hub.wait_list(lambda g: all(x["state"] == "up" and x["last_sample_age_ms"] is not None
                                        for x in g.values()) and len(g) == 2)

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        cls.a.stop()
        cls.b.stop()

    def test_list_names_state_version_sample_health(self):
        guests = self.hub.wait_list(lambda g: all(x["health"] for x in g.values()))
        self.assertEqual(sorted(guests), ["alpha", "beta"])
        for name, sock in (("alpha", self.a.sock), ("beta", self.b.sock)):
            g = guests[name]
            self.assertEqual(g["state"], "up")
            self.assertEqual(g["source"], "static")
            self.assertEqual(g["path"], sock)
            self.assertRegex(g["version"], r"^\d+\.\d+\.\d+")
            self.assertLess(g["last_sample_age_ms"], scaled(2000))
            self.assertEqual(g["health"], "ok")
            self.assertEqual(g["pending"], 0)

    def test_get_returns_latest_hello_sample_health(self):
        c = self.hub.client()
        c.send({"op": "get", "guest": "beta", "id": 5})
        msg = c.response(5)
        c.close()
        self.assertTrue(msg["ok"], msg)
        self.assertEqual(msg["guest"], "beta")
        r = msg["result"]
        self.assertEqual(r["hello"]["agent"], "guestd")
        self.assertEqual(r["hello"]["protocol"], 1)
        self.assertIn("cpu", r["sample"])
        self.assertEqual(r["health"]["status"], "ok")

    def test_two_clients_same_ids_get_their_own_answers(self):
        c1, c2 = self.hub.client(), self.hub.client()
        # Both use ids 1..5 at once, on both guests: only the hub's ids keep
        # them apart.
        for i in range(1, 6):
            echo(c1, "alpha", i, "c1-alpha-%d" % i)
            echo(c2, "alpha", i, "c2-alpha-%d" % i)
            echo(c1, "beta", "s%d" % i, "c1-beta-%d" % i)
        got1, got2 = {}, {}
        for _ in range(10):
            m = c1.response()
            self.assertTrue(m["ok"], m)
            got1[(m["guest"], m["id"])] = m["result"]["stdout"]
        for _ in range(5):
            m = c2.response()
            self.assertTrue(m["ok"], m)
            got2[(m["guest"], m["id"])] = m["result"]["stdout"]
        for i in range(1, 6):
            self.assertEqual(got1[("alpha", i)], "c1-alpha-%d\n" % i)
            self.assertEqual(got1[("beta", "s%d" % i)], "c1-beta-%d\n" % i)
            self.assertEqual(got2[("alpha", i)], "c2-alpha-%d\n" % i)
        # Nothing else arrives for either.
        for c in (c1, c2):
            c.s.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                c.s.recv(1)
            c.close()

    def test_the_guests_own_errors_come_back_with_the_clients_id(self):
        c = self.hub.client()
        c.send({"guest": "alpha", "id": "x", "cmd": "no.such"})
        m = c.response("x")
        self.assertFalse(m["ok"])
        self.assertEqual(m["error"]["code"], "unknown_command")
        self.assertEqual(m["guest"], "alpha")
        # A member the agent does not take is still the agent's to refuse.
        c.send({"guest": "alpha", "id": "y", "cmd": "ping", "extra": 1})
        self.assertEqual(c.response("y")["error"]["code"], "invalid_request")
        c.close()

    def test_hub_errors(self):
        c = self.hub.client()
        c.send({"guest": "gamma", "id": 1, "cmd": "ping"})
        self.assertEqual(c.response(1)["error"]["code"], "unknown_guest")
        c.send({"id": 2, "cmd": "ping"})
        self.assertEqual(c.response(2)["error"]["code"], "invalid_request")
        c.send({"op": "nope", "id": 3})
        self.assertEqual(c.response(3)["error"]["code"], "invalid_request")
        c.send_raw(b"not json\n")
        m = c.response()
        self.assertEqual((m["id"], m["error"]["code"]), (None, "parse_error"))
        c.send({"op": "watch", "guest": "gamma", "id": 4})
        self.assertEqual(c.response(4)["error"]["code"], "unknown_guest")
        c.close()

    def test_watch_fans_out_to_watchers_only(self):
        w1, w2, idle, all_ = (self.hub.client() for _ in range(4))
        for w in (w1, w2):
            w.send({"op": "watch", "guest": "alpha", "id": "w"})
            self.assertTrue(w.response("w")["ok"])
        all_.send({"op": "watch", "guest": "*", "id": "w"})
        self.assertTrue(all_.response("w")["ok"])
        for w in (w1, w2):
            ev = w.wait_event("metrics", timeout=3)
            self.assertEqual(ev["guest"], "alpha")
            self.assertIn("cpu", ev["data"])
            self.assertIsInstance(ev["seq"], int)
        seen = set()
        deadline = time.time() + scaled(3)
        while seen != {"alpha", "beta"} and time.time() < deadline:
            seen.add(all_.wait_event("metrics", timeout=3)["guest"])
        self.assertEqual(seen, {"alpha", "beta"})
        # Only alpha's for the alpha watchers.
        for _ in range(5):
            self.assertEqual(w1.wait_event("metrics", timeout=3)["guest"], "alpha")
        idle.s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            idle.s.recv(1)
        w1.send({"op": "unwatch", "guest": "alpha", "id": "u"})
        self.assertTrue(w1.wait_for(lambda m: m.get("id") == "u")["ok"])
        for c in (w1, w2, idle, all_):
            c.close()

    def test_client_gone_mid_request_costs_nothing(self):
        c = self.hub.client()
        c.send({"guest": "alpha", "id": 1, "cmd": "exec", "args": {"argv": ["sleep", "0.5"]}})
        time.sleep(0.1)
        c.close()
        # The answer comes back to nobody; the hub and the guest carry on.
        time.sleep(0.7)
        guests = self.hub.wait_list(lambda g: g["alpha"]["pending"] == 0)
        self.assertEqual(guests["alpha"]["state"], "up")
        c2 = self.hub.client()
        c2.send({"guest": "alpha", "id": 2, "cmd": "ping"})
        self.assertEqual(c2.response(2)["result"], {"pong": True})
        c2.close()
        self.assertIsNone(self.hub.proc.poll())

    def test_guestctl_via_hub(self):
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "-d", "beta", "call", "exec",
                              "argv=[\"echo\",\"via-hub\"]"], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["stdout"], "via-hub\n")
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "-d", "beta", "watch",
                              "--event", "metrics", "--count", "2"], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        self.assertEqual([(x["guest"], x["event"]) for x in lines], [("beta", "metrics")] * 2)
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "list"], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = out.stdout.splitlines()
        self.assertEqual(rows[0].split(), ["NAME", "STATE", "VERSION", "SAMPLE", "HEALTH",
                                           "SOURCE"])
        cells = {r.split()[0]: r.split() for r in rows[1:]}
        self.assertEqual(sorted(cells), ["alpha", "beta"])
        self.assertEqual(cells["alpha"][1], "up")
        self.assertEqual(cells["alpha"][4], "ok")
        self.assertEqual(cells["alpha"][5], "static")
        self.assertRegex(cells["alpha"][3], r"^\d+\.\ds$")
        # Errors: an unknown guest, -d without --hub, call without -d.
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "-d", "nope", "call", "ping"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 1)
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "-d", "nope", "watch"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no guest of that name", out.stderr)
        out = subprocess.run([GUESTCTL, "-s", "/nonexistent", "-d", "x", "call", "ping"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        out = subprocess.run([GUESTCTL, "--hub", self.hub.sock, "call", "ping"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)


class Reconnect(unittest.TestCase):
    def test_guest_down_then_back(self):
        d = tempfile.mkdtemp(prefix="guestd-hub-rc-")
        path = os.path.join(d, "g.sock")
        a = Agent(*FAST)
        os.rename(a.sock, path)  # the agent listens on the renamed socket as before
        with Hub("guests.g=" + path, "hub.reconnect_max_ms=200") as hub:
            hub.wait_list(lambda g: g["g"]["state"] == "up")
            w = hub.client()
            w.send({"op": "watch", "guest": "g", "id": "w"})
            w.response("w")
            c = hub.client()
            c.send({"guest": "g", "id": 1, "cmd": "exec", "args": {"argv": ["sleep", "5"]}})
            time.sleep(0.2)
            a.stop()
            # The request in flight is answered, not left hanging.
            m = c.response(1, timeout=3)
            self.assertEqual(m["error"]["code"], "guest_lost")
            st = w.wait_event("guest.state", timeout=3)
            self.assertEqual((st["guest"], st["data"]["state"]), ("g", "down"))
            c.send({"guest": "g", "id": 2, "cmd": "ping"})
            self.assertEqual(c.response(2)["error"]["code"], "guest_down")
            # Back at the same path: up again, counted as a reconnect.
            a2 = Agent(*FAST)
            os.rename(a2.sock, path)
            guests = hub.wait_list(lambda g: g["g"]["state"] == "up", timeout=5)
            self.assertEqual(guests["g"]["reconnects"], 1)
            c.send({"guest": "g", "id": 3, "cmd": "ping"})
            self.assertEqual(c.response(3)["result"], {"pong": True})
            c.close()
            w.close()
            a2.stop()
        shutil.rmtree(d)


class GlobDiscovery(unittest.TestCase):
    def test_sockets_appear_and_go(self):
        d = tempfile.mkdtemp(prefix="guestd-hub-glob-")
        with Hub("discovery.globs=%s/*.sock" % d) as hub:
            self.assertEqual(hub.list(), {})
            a = Agent(*FAST)
            t0 = time.time()
            os.rename(a.sock, os.path.join(d, "web-1.sock"))
            guests = hub.wait_list(lambda g: g.get("web-1", {}).get("state") == "up", timeout=2)
            self.assertLess(time.time() - t0, scaled(2))
            self.assertEqual(guests["web-1"]["source"], "glob")
            # A file that is not a socket, and a name not allowed, are not guests.
            open(os.path.join(d, "plain.sock"), "w").close()
            os.symlink("/nonexistent", os.path.join(d, ".hidden.sock"))
            time.sleep(0.3)
            self.assertEqual(sorted(hub.list()), ["web-1"])
            os.unlink(os.path.join(d, "web-1.sock"))
            hub.wait_list(lambda g: "web-1" not in g, timeout=2)
            a.stop()
        shutil.rmtree(d)

    def test_static_name_wins_over_glob(self):
        d = tempfile.mkdtemp(prefix="guestd-hub-glob-")
        a, b = Agent(*FAST), Agent(*FAST)
        os.rename(b.sock, os.path.join(d, "vm.sock"))
        with Hub("discovery.globs=%s/*.sock" % d, "guests.vm=" + a.sock) as hub:
            time.sleep(0.3)
            guests = hub.wait_list(lambda g: g["vm"]["state"] == "up")
            self.assertEqual((guests["vm"]["source"], guests["vm"]["path"]), ("static", a.sock))
        a.stop()
        b.stop()
        shutil.rmtree(d)


class GuestLogs(unittest.TestCase):
    def test_lines_byte_for_byte_rotated_and_kept_after_removal(self):
        d = tempfile.mkdtemp(prefix="guestd-hub-logs-")
        socks, logs = os.path.join(d, "socks"), os.path.join(d, "logs")
        os.mkdir(socks)
        a = Agent(*FAST)
        os.rename(a.sock, os.path.join(socks, "web-1.sock"))
        with Hub("discovery.globs=%s/*.sock" % socks, "log.dir=" + logs,
                 "log.max_bytes=4096", "log.keep=2") as hub:
            w = hub.client()
            hub.wait_list(lambda g: g.get("web-1", {}).get("state") == "up")
            w.send({"op": "watch", "guest": "web-1", "id": "w"})
            w.response("w")
            seen = []
            while len(seen) < 12:
                line = w.read_raw_line_until(time.time() + scaled(5))
                if b'"event":"metrics"' in line or b'"event":"health"' in line:
                    seen.append(line)
            # The guest goes: its logs stay.
            os.unlink(os.path.join(socks, "web-1.sock"))
            hub.wait_list(lambda g: "web-1" not in g)
            while True:  # what the watcher got before the guest went
                try:
                    seen.append(w.read_raw_line_until(time.time() + scaled(0.5)))
                except TimeoutError:
                    break
            w.close()
        a.stop()
        files = sorted(os.listdir(os.path.join(logs, "web-1")))
        self.assertEqual(files, ["metrics.ndjson", "metrics.ndjson.1", "metrics.ndjson.2"])
        lines = []
        for name in ("metrics.ndjson.2", "metrics.ndjson.1", "metrics.ndjson"):
            with open(os.path.join(logs, "web-1", name), "rb") as f:
                data = f.read()
            self.assertTrue(data.endswith(b"\n"))  # no torn line
            self.assertLessEqual(len(data), 4096 + 8192)
            lines += data.splitlines()
        # What a watcher got is the guest's line with "guest" put first; the
        # log holds the guest's line itself.
        prefix = b'{"guest":"web-1",'
        for line in seen:
            self.assertTrue(line.startswith(prefix), line[:40])
        watched = set(b"{" + x[len(prefix):] for x in seen)
        self.assertGreaterEqual(len(lines), 3)
        for x in lines:
            self.assertIn(x, watched)
        for x in lines:
            self.assertIn(json.loads(x)["event"], ("metrics", "health"))
        out = subprocess.run([GUESTCTL, "log", "summary", "--field", "cpu.usage_pct"] +
                             [os.path.join(logs, "web-1", f) for f in files],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("cpu.usage_pct", out.stdout)
        shutil.rmtree(d)


NODE_XML = """<node>
  <domain type='test'>
    <name>lv-guest</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
    <memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='%s'/>
        <target type='virtio' name='org.guestd.agent.0'/>
      </channel>
    </devices>
  </domain>
  <domain type='test'>
    <name>no-channel</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e1940</uuid>
    <memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>
  </domain>
</node>
"""


class LibvirtTestDriver(unittest.TestCase):
    """libvirt's in-process test driver (test:///FILE): the listing, the live
    XML's channel, all on the hub's discovery thread, without libvirtd. Lifecycle
    events and libvirtd restarts need the VM suite (tests/e2e)."""

    def test_running_domains_with_the_channel_are_guests(self):
        a = Agent(*FAST)
        d = tempfile.mkdtemp(prefix="guestd-hub-lv-")
        node = os.path.join(d, "node.xml")
        with open(node, "w") as f:
            f.write(NODE_XML % a.sock)
        with Hub("discovery.libvirt_uri=test://" + node) as hub:
            guests = hub.wait_list(lambda g: g.get("lv-guest", {}).get("state") == "up")
            self.assertEqual(sorted(guests), ["lv-guest"])
            self.assertEqual((guests["lv-guest"]["source"], guests["lv-guest"]["path"]),
                             ("libvirt", a.sock))
            c = hub.client()
            c.send({"guest": "lv-guest", "id": 1, "cmd": "ping"})
            self.assertEqual(c.response(1)["result"], {"pong": True})
            c.close()
            rc = hub.stop()
        self.assertEqual(rc, 0)  # the thread joined, its uv_async closed: the loop ended clean
        a.stop()
        shutil.rmtree(d)

    def test_unreachable_libvirt_is_retried_not_fatal(self):
        with Hub("discovery.libvirt_uri=test:///nonexistent/node.xml") as hub:
            # The discovery thread tries, logs, and tries again later; the
            # hub answers meanwhile.
            deadline = time.time() + scaled(5)
            while "cannot connect to test:///nonexistent/node.xml" not in hub.stderr():
                self.assertLess(time.time(), deadline, hub.stderr())
                time.sleep(0.05)
            self.assertEqual(hub.list(), {})


class Configuration(unittest.TestCase):
    def run_hub(self, *args):
        return subprocess.run([HUB] + list(args), capture_output=True, text=True, timeout=10)

    def test_usage_and_config_errors_exit_2(self):
        for args in (["--set", "bogus.key=1"], ["--set", "guests.-bad=/x.sock"],
                     ["--set", "guests.vm=relative.sock"], ["--set", "http.listen=nowhere"],
                     ["--set", "hub.max_pending=0"], ["--nope"], ["extra"],
                     ["-c", "/nonexistent/hub.conf"],
                     ["--set", "discovery.globs=/run/*/x.sock"]):
            r = self.run_hub("-c", "/dev/null", *args) if args[0] != "-c" else self.run_hub(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertTrue(r.stderr.startswith("guestd-hub: ") or "Usage" in r.stderr, r.stderr)

    def test_dump_config_loads_back(self):
        r = self.run_hub("-c", "/dev/null", "--set", "guests.vm1=/run/vm1.sock",
                         "--set", "guests.vm2=/run/vm2.sock", "--set", "http.listen=none",
                         "--dump-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("\n[guests]\n", r.stdout)
        self.assertIn("\nvm1 = /run/vm1.sock\n", r.stdout)
        self.assertIn("\nlisten = none\n", r.stdout)
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write(r.stdout)
            f.flush()
            again = self.run_hub("-c", f.name, "--dump-config")
        self.assertEqual(again.stdout, r.stdout)

    def test_version_and_help(self):
        self.assertRegex(self.run_hub("--version").stdout, r"^guestd-hub \d+\.\d+\.\d+\n$")
        h = self.run_hub("--help")
        self.assertEqual(h.returncode, 0)
        self.assertIn("--dump-config", h.stdout)


if __name__ == "__main__":
    unittest.main()
