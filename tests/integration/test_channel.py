"""The channel and the dispatcher against the real guestd on a unix socket:
framing, every request error of protocol.md, slow and vanishing hosts."""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import MEMORY_TOOL, Agent  # noqa: E402


class ChannelTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent()
        self.host = self.agent.connect()

    def tearDown(self):
        self.host.close()
        rc = self.agent.stop()
        self.assertEqual(rc, 0, "guestd should exit 0 on SIGTERM")

    def assert_error(self, raw, code, rid=None):
        """Sends raw bytes, expects one error reply with code, then checks the
        agent still answers a valid request."""
        self.host.send_raw(raw)
        reply = self.host.response()
        self.assertEqual(reply["ok"], False, reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        self.assertIsInstance(reply["error"]["message"], str)
        self.assertEqual(reply["id"], rid)
        self.assertEqual(self.host.call("ping", rid="after"), {"id": "after", "ok": True, "result": {"pong": True}})
        return reply

    def test_hello(self):
        h = self.host.hello
        self.assertEqual(h["event"], "hello")
        self.assertIsInstance(h["seq"], int)
        self.assertGreater(h["ts"], 1.6e12)
        d = h["data"]
        self.assertEqual(d["agent"], "guestd")
        self.assertEqual(d["protocol"], 1)
        self.assertIn("ping", d["commands"])
        self.assertIn("info", d["commands"])
        self.assertEqual(len(d["boot_id"]), 36)
        self.assertLessEqual(d["started_at"], h["ts"])

    def test_ping_and_info(self):
        self.assertEqual(self.host.call("ping", rid=42), {"id": 42, "ok": True, "result": {"pong": True}})
        info = self.host.call("info", rid="i")["result"]
        self.assertEqual(info["agent"], "guestd")
        self.assertEqual(info["protocol"], 1)
        self.assertEqual(info["started_at"], self.host.hello["data"]["started_at"])
        names = {c["name"]: c for c in info["commands"]}
        self.assertTrue(names["ping"]["enabled"])
        self.assertTrue(names["ping"]["summary"])

    def test_one_byte_writes(self):
        for b in b'{"id":"slow","cmd":"ping"}\n':
            self.host.send_raw(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(self.host.response("slow")["result"], {"pong": True})

    def test_thousand_requests_in_one_write(self):
        data = b"".join(b'{"id":%d,"cmd":"ping"}\n' % i for i in range(1000))
        self.host.send_raw(data)
        seen = set()
        for _ in range(1000):
            r = self.host.response()
            self.assertTrue(r["ok"])
            seen.add(r["id"])
        self.assertEqual(seen, set(range(1000)))

    def test_crlf_and_empty_lines(self):
        self.host.send_raw(b'\n\r\n\n{"id":"crlf","cmd":"ping"}\r\n\n')
        self.assertEqual(self.host.response()["id"], "crlf")
        # The empty lines produced no reply: the next reply is the next ping's.
        self.assertEqual(self.host.call("ping", rid="next")["id"], "next")

    def test_too_large_then_ping(self):
        big = b'{"id":"big","cmd":"ping","args":{"x":"' + b"a" * (2 << 20) + b'"}}\n'
        self.host.send_raw(big + b'{"id":"p","cmd":"ping"}\n')
        r = self.host.response()
        self.assertEqual(r["error"]["code"], "too_large")
        self.assertIsNone(r["id"])
        self.assertEqual(self.host.response()["id"], "p")

    def test_parse_errors(self):
        self.assert_error(b'{"id":1,"cmd":\n', "parse_error")
        self.assert_error(b'{"id":1,"cmd":"ping"}}\n', "parse_error")
        self.assert_error(b'{"id":1,"cmd":"pi\x00ng"}\n', "parse_error")
        self.assert_error(b'{"id":1,"cmd":"\xff\xfe"}\n', "parse_error")
        self.assert_error(b'[1,2,3]\n', "parse_error")
        self.assert_error(b'"ping"\n', "parse_error")
        self.assert_error(b"[" * 10000 + b"]" * 10000 + b"\n", "parse_error")
        self.assert_error(b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"\n", "parse_error")

    def test_invalid_requests(self):
        self.assert_error(b'{"id":"a"}\n', "invalid_request", "a")
        self.assert_error(b'{"id":"b","cmd":7}\n', "invalid_request", "b")
        self.assert_error(b'{"id":"c","cmd":"ping","args":[1]}\n', "invalid_request", "c")
        self.assert_error(b'{"id":{"x":1},"cmd":"ping"}\n', "invalid_request", None)
        self.assert_error(b'{"id":true,"cmd":"ping"}\n', "invalid_request", None)

    def test_unknown_command(self):
        r = self.assert_error(b'{"id":"u","cmd":"exce"}\n', "unknown_command", "u")
        self.assertEqual(r["error"]["message"], "no command 'exce'")

    def test_invalid_args(self):
        r = self.assert_error(b'{"id":"x","cmd":"ping","args":{"extra":1}}\n', "invalid_args", "x")
        self.assertIn("extra", r["error"]["message"])
        # Without "args" at all, required arguments are still required.
        r = self.assert_error(b'{"id":"k","cmd":"process.kill"}\n', "invalid_args", "k")
        self.assertEqual(r["error"]["message"], "missing argument 'pid'")
        self.assert_error(b'{"id":"t","cmd":"metrics.get","args":{"collectors":"cpu"}}\n',
                          "invalid_args", "t")

    def test_id_echoed_verbatim(self):
        for rid in ["s", 0, 17, -3, 1.5, "with \"quotes\""]:
            self.assertEqual(self.host.call("ping", rid=rid)["id"], rid)
        self.host.send_raw(b'{"cmd":"ping"}\n')
        self.assertIsNone(self.host.response()["id"])

    def test_second_host_refused(self):
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.connect(self.agent.sock)
        other.settimeout(5)
        self.assertEqual(other.recv(100), b"", "a second host is closed at once")
        other.close()
        self.assertTrue(self.host.call("ping")["ok"])
        self.assertIn("refused a second host", self.agent.stderr())

    def test_reconnect_after_vanishing_mid_response(self):
        started = self.host.hello["data"]["started_at"]
        for round_ in range(5):
            # Many replies queued, then the host vanishes without reading.
            self.host.send_raw(b"".join(b'{"id":%d,"cmd":"info"}\n' % i for i in range(300)))
            time.sleep(0.05)
            self.host.close()
            self.host = self.agent.connect()
            self.assertEqual(self.host.hello["data"]["started_at"], started)
            self.assertTrue(self.host.call("ping", rid="alive")["ok"])
        self.assertIsNone(self.agent.proc.poll())


class PolicyTest(unittest.TestCase):
    def test_deny_wins_over_allow(self):
        with Agent("--set", "commands.allow=*", "--set", "commands.deny=inf*") as agent:
            host = agent.connect()
            self.assertNotIn("info", host.hello["data"]["commands"])
            host.send_raw(b'{"id":"f","cmd":"info"}\n')
            r = host.response("f")
            self.assertEqual(r["error"]["code"], "forbidden")
            self.assertTrue(host.call("ping")["ok"])
            host.close()


class SlowHostTest(unittest.TestCase):
    def test_host_that_stops_reading(self):
        queue = 65536
        with Agent("--set", "metrics.interval_ms=100", "--set", "health.interval_ms=100",
                   "--set", "channel.out_queue_bytes=%d" % queue) as agent:
            host = agent.connect()
            host.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            rss_start = agent.status("VmRSS")
            # 200 requests, then nothing is read for 3 s while events flow.
            host.send_raw(b"".join(b'{"id":%d,"cmd":"info"}\n' % i for i in range(200)))
            time.sleep(3)
            rss_end = agent.status("VmRSS")
            # Under the queue bound plus a small constant (KiB); a sanitizer's
            # shadow memory or valgrind's makes RSS meaningless.
            if not MEMORY_TOOL:
                self.assertLess(rss_end - rss_start, queue // 1024 + 2048,
                                "RSS grew from %d to %d KiB" % (rss_start, rss_end))
            ids = set()
            events = 0
            while len(ids) < 200:
                m = host.next_message(timeout=20)
                if "ok" in m:
                    self.assertTrue(m["ok"], m)
                    ids.add(m["id"])
                else:
                    events += 1
            self.assertEqual(ids, set(range(200)), "no response is lost")
            # Events resume once the host reads again.
            host.wait_event("health", timeout=5)
            host.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
