"""guestd-hub with misbehaving guests beside a real guestd: one that floods,
one that sends garbage and overlong lines, one that never reads, one that
closes mid-line, one stopped with SIGSTOP. The real guest's answers and
events, and the hub's own answers, must not suffer."""
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, scaled  # noqa: E402
from hubhost import Hub, free_port, http, parse, series  # noqa: E402

FAST = ("--set", "metrics.interval_ms=200", "--set", "health.interval_ms=500")
HELLO = json.dumps({"event": "hello", "seq": 1, "ts": 1, "data": {
    "agent": "fake", "version": "9.9.9", "protocol": 1, "hostname": "fake",
    "boot_id": "x", "started_at": 1, "commands": []}}).encode() + b"\n"


class FakeGuest:
    """A unix socket the hub connects to, served by behave(conn, n) in a
    thread, n counting connections from 0."""

    def __init__(self, path, behave):
        self.path = path
        self.behave = behave
        self.stop = threading.Event()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.srv.settimeout(0.1)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.behave(self, conn, n)
            except OSError:
                pass
            n += 1

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.srv.close()


def flood(fg, conn, n):
    conn.sendall(HELLO)
    line = json.dumps({"event": "metrics", "seq": 2, "ts": 2,
                       "data": {"cpu": {"usage_pct": 1.0}, "pad": "x" * 2000}}).encode() + b"\n"
    block = line * 200
    while not fg.stop.is_set():
        conn.sendall(block)
    conn.close()


def garbage(fg, conn, n):
    conn.sendall(HELLO)
    junk = [b"not json\n", b"[1,2,3]\n", b"\xff\xfe\x00\n", b"{\"event\":\n", b"   \n",
            b"{\"id\":\"hub-999999\",\"ok\":true,\"result\":{}}\n",
            b"{" + b"\"a\":1," * 3000 + b"\"b\":2}\n"]  # longer than the limit
    while not fg.stop.is_set():
        for j in junk:
            conn.sendall(j)
        time.sleep(0.001)
    conn.close()


def deaf(fg, conn, n):
    """Says hello, then never reads: the hub's writes fill the socket."""
    conn.sendall(HELLO)
    fg.conn = conn  # kept open, unread
    while not fg.stop.is_set():
        time.sleep(0.05)
    conn.close()


def torn(fg, conn, n):
    """First connection: half a line, then gone. Then a good guest."""
    if n == 0:
        conn.sendall(HELLO + b'{"event":"metrics","seq":2,"ts":2,"data":{"cpu":{"usa')
        conn.close()
        return
    conn.sendall(b'ge_pct":50.0}}}\n' + HELLO +
                 b'{"event":"metrics","seq":3,"ts":3,"data":{"cpu":{"usage_pct":7.5}}}\n')
    while not fg.stop.is_set():
        time.sleep(0.05)
    conn.close()


class Faults(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="guestd-hub-faults-")
        self.fakes = {}
        for name, fn in (("flood", flood), ("garbage", garbage), ("deaf", deaf), ("torn", torn)):
            self.fakes[name] = FakeGuest(os.path.join(self.dir.name, name + ".sock"), fn)
        self.good = Agent(*FAST)
        sets = ["guests.%s=%s" % (n, f.path) for n, f in self.fakes.items()]
        self.port = free_port()
        sets += ["guests.good=" + self.good.sock, "hub.guest_max_line_bytes=4096",
                 "http.listen=127.0.0.1:%d" % self.port,
                 "hub.guest_queue_bytes=65536", "hub.reconnect_max_ms=200",
                 "hub.client_queue_bytes=65536"]
        self.hub = Hub(*sets)

    def tearDown(self):
        for f in self.fakes.values():
            f.close()
        self.hub.stop()
        self.good.stop()
        self.dir.cleanup()

    def ping_ms(self, c, rid):
        t0 = time.time()
        c.send({"guest": "good", "id": rid, "cmd": "ping"})
        m = c.response(rid, timeout=5)
        self.assertEqual(m["result"], {"pong": True})
        return (time.time() - t0) * 1000

    def scrape_ms(self):
        """One gzip scrape: (wall ms, parsed exposition)."""
        t0 = time.time()
        status, _, body = http("http://127.0.0.1:%d/metrics" % self.port)
        ms = (time.time() - t0) * 1000
        self.assertEqual(status, 200)
        return ms, parse(body.decode())

    def test_bad_guests_affect_only_themselves(self):
        guests = self.hub.wait_list(lambda g: all(g[n]["state"] == "up" for n in g)
                                    and g["good"]["last_sample_age_ms"] is not None)
        c = self.hub.client()
        watcher = self.hub.client()
        watcher.send({"op": "watch", "guest": "good", "id": "w"})
        watcher.response("w")
        # The deaf guest: requests queue until its bound, then busy; never a hang.
        big = "y" * 8000
        codes = []
        for i in range(200):
            c.send({"guest": "deaf", "id": "d%d" % i, "cmd": "ping", "args": {"pad": big}})
        deadline = time.time() + scaled(5)
        while time.time() < deadline:
            m = c.wait_for(lambda m: str(m.get("id", "")).startswith("d"), timeout=1)
            codes.append(m["error"]["code"])
            if m["error"]["code"] == "busy":
                break
        self.assertIn("busy", codes)
        # Meanwhile the good guest answers quickly and its samples keep coming.
        times = sorted(self.ping_ms(c, "p%d" % i) for i in range(20))
        print("ping through the hub beside the bad guests: median %.1f ms, worst %.1f ms"
              % (times[10], times[-1]), file=sys.stderr)
        self.assertLess(times[10], scaled(50))
        self.assertLess(times[-1], scaled(500))
        seqs = [watcher.wait_event("metrics", timeout=2)["seq"] for _ in range(3)]
        self.assertEqual(seqs, sorted(seqs))
        # Every scrape meanwhile is whole and quick, and the good guest's
        # series are in each one.
        scrapes = []
        for _ in range(10):
            ms, got = self.scrape_ms()
            scrapes.append(ms)
            self.assertEqual(series(got, "guestd_up", domain="good"),
                             {("guestd_up", frozenset({("domain", "good")})): 1.0})
            self.assertTrue(series(got, "guestd_cpu_seconds_total", domain="good"))
            self.assertEqual(series(got, "guestd_guest_connected", domain="deaf")
                             [("guestd_guest_connected", frozenset({("domain", "deaf")}))], 1.0)
        scrapes.sort()
        print("scrapes beside the bad guests: median %.1f ms, worst %.1f ms"
              % (scrapes[5], scrapes[-1]), file=sys.stderr)
        self.assertLess(scrapes[-1], scaled(500))
        t0 = time.time()
        guests = self.hub.list()
        self.assertLess((time.time() - t0) * 1000, scaled(250))
        self.assertEqual(guests["good"]["state"], "up")
        self.assertLess(guests["good"]["last_sample_age_ms"], scaled(1000))
        self.assertEqual(guests["good"]["parse_errors"], 0)
        self.assertGreater(guests["garbage"]["parse_errors"], 10)
        self.assertGreater(guests["garbage"]["too_large"], 0)
        self.assertEqual(guests["garbage"]["state"], "up")
        self.assertEqual(guests["flood"]["version"], "9.9.9")
        # The torn line was not glued to the next connection's bytes: the
        # second connection's first fragment is garbage, its sample is whole.
        guests = self.hub.wait_list(lambda g: g["torn"]["reconnects"] >= 1)
        c.send({"op": "get", "guest": "torn", "id": "t"})
        r = c.response("t")["result"]
        self.assertEqual(r["sample"], {"cpu": {"usage_pct": 7.5}})
        c.close()
        watcher.close()
        self.assertIsNone(self.hub.proc.poll())


class Stopped(unittest.TestCase):
    def test_sigstopped_guest(self):
        a, b = Agent(*FAST), Agent(*FAST)
        with Hub("guests.a=" + a.sock, "guests.b=" + b.sock) as hub:
            hub.wait_list(lambda g: all(x["state"] == "up" for x in g.values()))
            os.kill(b.pid(), signal.SIGSTOP)
            try:
                c = hub.client()
                c.send({"guest": "b", "id": "hang", "cmd": "ping"})
                t0 = time.time()
                for i in range(10):
                    c.send({"guest": "a", "id": i, "cmd": "ping"})
                    self.assertEqual(c.response(i, timeout=2)["result"], {"pong": True})
                guests = hub.list()
                self.assertLess(time.time() - t0, scaled(1.0))
                self.assertEqual(guests["b"]["pending"], 1)
                self.assertEqual(guests["b"]["state"], "up")
            finally:
                os.kill(b.pid(), signal.SIGCONT)
            # Once it runs again, the held request is answered.
            self.assertEqual(c.response("hang", timeout=5)["result"], {"pong": True})
            c.close()
        a.stop()
        b.stop()


if __name__ == "__main__":
    unittest.main()
