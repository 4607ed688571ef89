"""guestd-hub for integration tests: started on a temporary client socket
with --set arguments, its clients speaking docs/fleet.md's envelope."""
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from host import (Agent, Host, VALGRIND, VALGRIND_ARGS, VALGRIND_EXIT, scaled, terminate,
                  wait_socket)

BUILD = os.environ.get("GUESTD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
HUB = os.environ.get("GUESTD_HUB_BIN", os.path.join(BUILD, "guestd-hub"))
GUESTCTL = os.path.join(BUILD, "guestctl")


class Hub:
    """One guestd-hub process; sets: "section.key=value" strings."""

    def __init__(self, *sets, config_text=None):
        self.dir = tempfile.TemporaryDirectory(prefix="guestd-hub-it-")
        self.sock = os.path.join(self.dir.name, "hub.sock")
        cfg = "/dev/null"
        if config_text is not None:
            cfg = os.path.join(self.dir.name, "hub.conf")
            with open(cfg, "w") as f:
                f.write(config_text)
        args = [HUB, "-c", cfg, "--set", "hub.socket=" + self.sock, "--set", "http.listen=none",
                "--set", "hub.log_level=debug"]
        for s in sets:
            args += ["--set", s]
        self.log_path = os.path.join(self.dir.name, "stderr.log")
        self.log = open(self.log_path, "wb")
        self.valgrind_log = os.path.join(self.dir.name, "valgrind.log")
        if VALGRIND:
            args = VALGRIND_ARGS + ["--log-file=" + self.valgrind_log] + args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_socket(self, "guestd-hub")

    stderr = Agent.stderr

    def client(self):
        return Host(self.sock)

    def list(self, timeout=5):
        c = self.client()
        try:
            c.send({"op": "list", "id": "list"})
            msg = c.response("list", timeout)
            assert msg["ok"], msg
            return {g["name"]: g for g in msg["result"]["guests"]}
        finally:
            c.close()

    def wait_list(self, match, timeout=5):
        """Polls the list until match(guests) holds; returns the guests."""
        deadline = time.time() + scaled(timeout)
        while True:
            guests = self.list()
            if match(guests):
                return guests
            if time.time() > deadline:
                raise AssertionError("hub list never matched: %r\n%s" % (guests, self.stderr()))
            time.sleep(0.05)

    def stop(self, timeout=5):
        if self.proc is None:
            return 0
        hung = terminate(self.proc, timeout)
        self.log.close()
        with open(self.log_path, "rb") as f:
            self.stderr_text = f.read().decode("utf-8", "replace")[-20000:]
        rc = self.proc.returncode
        report = ""
        if VALGRIND:
            try:
                with open(self.valgrind_log, errors="replace") as f:
                    report = f.read()
            except FileNotFoundError:
                report = "(no valgrind log)"
        self.dir.cleanup()
        self.proc = None
        if VALGRIND and (rc == VALGRIND_EXIT or hung):
            raise AssertionError("valgrind found errors in guestd-hub:\n" + report)
        if hung:
            raise AssertionError("guestd-hub did not exit within %s s of SIGTERM" % timeout)
        if rc != 0:
            # A sanitizer's report, or handles left open at exit.
            raise AssertionError("guestd-hub exited with %d:\n%s" % (rc, self.stderr_text))
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- the hub's /metrics, read by a test ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, headers=None, method="GET"):
    """(status, headers, body) of one request; errors are answers too."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def parse(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "bad line: %r" % line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def series(parsed, name, **labels):
    want = set(labels.items())
    return {k: v for k, v in parsed.items() if k[0] == name and want <= set(k[1])}
