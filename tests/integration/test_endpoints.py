"""The endpoints other than unix-listen: unix-connect (the agent dials the
host and redials with backoff) and stdio (for debugging)."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import GUESTD  # noqa: E402


def read_json_line(f, timeout=10):
    deadline = time.time() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        if time.time() > deadline:
            raise TimeoutError("no line within %s s" % timeout)
        c = f.read(1)
        if not c:
            raise EOFError
        buf += c
    return json.loads(buf)


class UnixConnectTest(unittest.TestCase):
    def test_dials_host_and_redials_after_it_goes(self):
        d = tempfile.mkdtemp(prefix="guestd-uc-")
        path = os.path.join(d, "host.sock")
        proc = subprocess.Popen([GUESTD, "-c", "/dev/null", "--channel", "unix-connect:" + path,
                                 "--set", "metrics.log_path=none", "--set", "channel.poll_ms=50",
                                 "--set", "channel.poll_max_ms=200"],
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # the host is not there yet: the agent keeps trying
            self.assertIsNone(proc.poll())
            lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lsock.bind(path)
            lsock.listen(1)
            lsock.settimeout(5)
            started = None
            for round_ in range(3):
                conn, _ = lsock.accept()
                f = conn.makefile("rwb", buffering=0)
                hello = read_json_line(f)
                self.assertEqual(hello["event"], "hello")
                if started is None:
                    started = hello["data"]["started_at"]
                self.assertEqual(hello["data"]["started_at"], started)
                f.write(b'{"id":%d,"cmd":"ping"}\n' % round_)
                reply = read_json_line(f)
                while "event" in reply:  # a health event may follow hello
                    reply = read_json_line(f)
                self.assertEqual(reply, {"id": round_, "ok": True, "result": {"pong": True}})
                f.close()
                conn.close()  # the host goes; the agent dials again
            lsock.close()
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)
            os.unlink(path)
            os.rmdir(d)


class StdioTest(unittest.TestCase):
    def test_requests_on_stdin_replies_on_stdout(self):
        proc = subprocess.Popen([GUESTD, "-c", "/dev/null", "--channel", "stdio",
                                 "--set", "metrics.log_path=none"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            self.assertEqual(read_json_line(proc.stdout)["event"], "hello")
            proc.stdin.write(b'{"id":"s","cmd":"ping"}\n')
            proc.stdin.flush()
            reply = read_json_line(proc.stdout)
            while "event" in reply:
                reply = read_json_line(proc.stdout)
            self.assertEqual(reply, {"id": "s", "ok": True, "result": {"pong": True}})
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
