"""guestctl against a real guestd on a unix socket (call, watch, every exit
status), and `guestctl log` on the fixture logs with exact expected output."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, listening  # noqa: E402


BUILD = os.environ.get("GUESTD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
GUESTCTL = os.path.join(BUILD, "guestctl")
HERE = os.path.dirname(os.path.abspath(__file__))
LOGS = os.path.join(os.environ.get("GUESTD_FIXTURES", os.path.join(HERE, "../fixtures")), "logs")
MAN = os.path.join(HERE, "../../tools/man/guestctl.1")


def gctl(*args, timeout=30, env=None):
    e = dict(os.environ)
    e.pop("GUESTCTL_SOCKET", None)
    if env:
        e.update(env)
    p = subprocess.run([GUESTCTL] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=e)
    return p.returncode, p.stdout, p.stderr


def fixture_files(*names):
    return [os.path.join(LOGS, n) for n in names]


class CallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = listening(Agent())

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    def call(self, *args, **kw):
        return gctl("-s", self.agent.sock, "call", *args, **kw)

    def test_ping_prints_the_result_as_pretty_json(self):
        self.assertEqual(self.call("ping"), (0, '{\n  "pong": true\n}\n', ""))

    def test_socket_from_the_environment(self):
        rc, out, _ = gctl("call", "ping", env={"GUESTCTL_SOCKET": self.agent.sock})
        self.assertEqual((rc, out), (0, '{\n  "pong": true\n}\n'))

    def test_values_are_typed_as_json(self):
        # timeout_ms must arrive as a number and argv as an array, or exec
        # answers invalid_args; "0644" is not JSON, so it stays a string.
        rc, out, err = self.call("exec", 'argv=["printf","%s","0644"]', "timeout_ms=5000")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["stdout"], "0644")
        rc, out, err = self.call("exec", "argv=[\"echo\",\"0644\"]", "stream=false")
        self.assertEqual((rc, json.loads(out)["stdout"]), (0, "0644\n"))

    def test_args_json_and_key_value_words(self):
        rc, out, err = self.call("exec", "--args", '{"argv":["echo","from-args"],"timeout_ms":1000}',
                                 'argv=["echo","from-word"]')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["stdout"], "from-word\n")

    def test_raw_prints_the_response_line(self):
        rc, out, _ = self.call("ping", "--raw")
        self.assertEqual(rc, 0)
        self.assertEqual(out.count("\n"), 1)
        msg = json.loads(out)
        self.assertEqual((msg["ok"], msg["result"]), (True, {"pong": True}))
        self.assertTrue(msg["id"].startswith("guestctl-"))

    def test_error_response_exits_1_with_the_message_on_stderr(self):
        rc, out, err = self.call("no.such.command")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("unknown_command", err)
        rc, out, err = self.call("ping", "extra=1")
        self.assertEqual(rc, 1)
        self.assertIn("invalid_args", err)

    def test_usage_errors_exit_2(self):
        sock = self.agent.sock
        for args in (["-s", sock, "call"],
                     ["-s", sock, "frobnicate"],
                     ["call", "ping"],  # no socket at all
                     ["-s", sock, "call", "ping", "novalue"],
                     ["-s", sock, "call", "ping", "--args", "[1]"],
                     ["-s", sock, "call", "ping", "--table"],
                     ["-s", sock, "--timeout", "0", "call", "ping"],
                     ["-s", sock, "watch", "--count", "x"],
                     ["--bogus"],
                     []):
            rc, _, err = gctl(*args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))

    def test_unreachable_socket_exits_1(self):
        rc, _, err = gctl("-s", "/nonexistent/guestd.sock", "call", "ping")
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect", err)

    def test_no_answer_within_timeout_exits_3(self):
        # A stopped agent: the kernel accepts the connection, nobody answers.
        agent = listening(Agent())
        try:
            os.kill(agent.pid(), signal.SIGSTOP)
            t0 = time.monotonic()
            rc, _, err = gctl("-s", agent.sock, "--timeout", "0.5", "call", "ping")
            took = time.monotonic() - t0
            self.assertEqual(rc, 3, err)
            self.assertGreaterEqual(took, 0.5)
            self.assertLess(took, 10)
        finally:
            os.kill(agent.pid(), signal.SIGCONT)
            agent.stop()


class WatchTest(unittest.TestCase):
    def test_events_one_line_each(self):
        with listening(Agent("--set", "metrics.interval_ms=100")) as agent:
            rc, out, err = gctl("-s", agent.sock, "watch", "--event", "metrics", "--count", "3")
            self.assertEqual(rc, 0, err)
            lines = out.splitlines()
            self.assertEqual(len(lines), 3)
            events = [json.loads(line) for line in lines]
            self.assertEqual({e["event"] for e in events}, {"metrics"})
            seqs = [e["seq"] for e in events]
            self.assertEqual(seqs, sorted(set(seqs)))
            # Without a filter the hello comes first.
            rc, out, _ = gctl("-s", agent.sock, "watch", "--count", "1")
            self.assertEqual(json.loads(out)["event"], "hello")

    def test_table(self):
        with listening(Agent("--set", "metrics.interval_ms=100")) as agent:
            rc, out, err = gctl("-s", agent.sock, "watch", "--table", "--count", "4")
            self.assertEqual(rc, 0, err)
            lines = out.splitlines()
            self.assertEqual(lines[0].split(),
                             ["TIME", "CPU%", "MEM%", "LOAD1", "DISK_R/s", "DISK_W/s",
                              "NET_RX/s", "NET_TX/s", "PROCS"])
            self.assertRegex(lines[1], r"^\d\d:\d\d:\d\d hello from \S+ \(guestd [\d.]+\)$")
            rows = [line for line in lines[2:] if " health " not in line]
            self.assertTrue(rows, out)
            for row in rows:
                cells = row.split()
                self.assertEqual(len(cells), 9, row)
                self.assertRegex(cells[0], r"^\d\d:\d\d:\d\d$")
                self.assertGreaterEqual(float(cells[1]), 0)
                self.assertGreater(float(cells[2]), 0)
                self.assertGreater(int(cells[8]), 0)

    def test_no_event_within_timeout_exits_3(self):
        with listening(Agent()) as agent:
            rc, out, err = gctl("-s", agent.sock, "--timeout", "0.5", "watch", "--event", "nosuch")
            self.assertEqual((rc, out), (3, ""), err)

    def test_guest_going_away_exits_1(self):
        agent = listening(Agent())
        p = subprocess.Popen([GUESTCTL, "-s", agent.sock, "watch"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(json.loads(p.stdout.readline())["event"], "hello")
            agent.stop()
            self.assertEqual(p.wait(10), 1)
            self.assertIn("closed", p.stderr.read())
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
            p.stderr.close()


SUMMARY = """\
10 samples from 2025-06-01T00:00:00Z to 2025-06-01T00:04:30Z (3 files, 2 bad lines)
field                        count         min        mean         p50         p95         max
uptime_s                        10        1000        1135        1120        1270        1270
cpu.count                       10           2           2           2           2           2
cpu.usage_pct                   10          10          55          50         100         100
cpu.iowait_pct                  10        0.50        0.50        0.50        0.50        0.50
cpu.per_cpu.0.usage_pct         10          10          55          50         100         100
cpu.per_cpu.1.usage_pct         10          10          55          50         100         100
memory.total_bytes              10  2147483648  2147483648  2147483648  2147483648  2147483648
memory.used_bytes               10  1073741824  1078460416  1077936128  1083179008  1083179008
memory.used_pct                 10          50       50.23       50.20       50.45       50.45
load.load1                      10           0        1.12           1        2.25        2.25
load.procs_total                10          90       94.50          94          99          99
filesystems./.used_pct          10       40.25       40.25       40.25       40.25       40.25
filesystems./.avail_bytes       10  8589934592  8589934592  8589934592  8589934592  8589934592
network.eth0.rx_bytes_per_s     10           0        4500        4000        9000        9000
network.eth0.tx_bytes_per_s     10      250.50      250.50      250.50      250.50      250.50
"""


class LogTest(unittest.TestCase):
    def test_summary_of_a_rotated_set_in_any_argument_order(self):
        rc, out, err = gctl("log", "summary", *fixture_files("metrics.ndjson", "metrics.ndjson.2",
                                                             "metrics.ndjson.1"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, SUMMARY)
        self.assertEqual(err, "guestctl: skipped 2 bad lines\n")

    def test_summary_of_chosen_fields(self):
        rc, out, _ = gctl("log", "summary", "--field", "network.eth0.rx_bytes_per_s",
                          "--since", "2025-06-01T00:02:00Z", *fixture_files("metrics.ndjson.1"))
        self.assertEqual(rc, 0)
        # The file holds the samples of 00:01:30, 00:02:00 and 00:02:30.
        self.assertEqual(out, "2 samples from 2025-06-01T00:02:00Z to 2025-06-01T00:02:30Z "
                              "(1 file, 1 bad line)\n"
                              "field                        count   min  mean   p50   p95   max\n"
                              "network.eth0.rx_bytes_per_s      2  4000  4500  4000  5000  5000\n")

    def test_show_lines_in_time_order(self):
        rc, out, _ = gctl("log", "show", *fixture_files("metrics.ndjson", "metrics.ndjson.1",
                                                        "metrics.ndjson.2"))
        self.assertEqual(rc, 0)
        ts = [json.loads(line)["ts"] for line in out.splitlines()]
        self.assertEqual(len(ts), 11)  # 10 metrics, 1 health
        self.assertEqual(ts, sorted(ts))
        with open(os.path.join(LOGS, "metrics.ndjson.2")) as f:
            self.assertTrue(out.startswith(f.read()), "lines are shown as they are")

    def test_show_fields_between_times(self):
        rc, out, _ = gctl("log", "show", "--since", "2025-06-01T00:01:00Z", "--until",
                          "2025-06-01T02:02:00+02:00", "--field", "cpu.usage_pct", "--field",
                          "status", "--field", "filesystems./.used_pct",
                          *fixture_files("metrics.ndjson.2", "metrics.ndjson.1"))
        self.assertEqual(rc, 0)
        self.assertEqual(out,
                         "2025-06-01T00:01:00.000Z metrics cpu.usage_pct=30.0 status=- "
                         "filesystems./.used_pct=40.25\n"
                         "2025-06-01T00:01:30.000Z metrics cpu.usage_pct=40.0 status=- "
                         "filesystems./.used_pct=40.25\n"
                         "2025-06-01T00:01:45.000Z health cpu.usage_pct=- status=degraded "
                         "filesystems./.used_pct=-\n")

    def test_relative_since(self):
        now = int(time.time() * 1000)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.ndjson")
            with open(path, "w") as f:
                for k in range(10):  # 30 s, 90 s, ... 570 s ago
                    f.write(json.dumps({"event": "metrics", "seq": k + 1, "ts": now - 30000 - 60000 * k,
                                        "data": {"cpu": {"usage_pct": k}}}) + "\n")
            rc, out, _ = gctl("log", "summary", "--since", "5m", path)
            self.assertEqual(rc, 0)
            self.assertTrue(out.startswith("5 samples"), out)
            rc, out, _ = gctl("log", "summary", "--until", "0.25h", path)
            self.assertTrue(out.startswith("no samples"), out)

    def test_export_csv(self):
        rc, out, _ = gctl("log", "export", "--csv", "--until", "2025-06-01T00:01:00",
                          "--field", "cpu.usage_pct", "--field", "network.eth0.rx_bytes_per_s",
                          "--field", "nosuch", *fixture_files("metrics.ndjson.2"))
        self.assertEqual(rc, 0)
        self.assertEqual(out, "ts,time,event,cpu.usage_pct,network.eth0.rx_bytes_per_s,nosuch\n"
                              "1748736000000,2025-06-01T00:00:00.000Z,metrics,10.0,0.0,\n"
                              "1748736030000,2025-06-01T00:00:30.000Z,metrics,20.0,1000.0,\n")

    def test_export_every_field(self):
        rc, out, _ = gctl("log", "export", *fixture_files("metrics.ndjson.2"))
        self.assertEqual(rc, 0)
        rows = out.splitlines()
        self.assertEqual(len(rows), 4)
        header = rows[0].split(",")
        self.assertEqual(header[:5], ["ts", "time", "event", "uptime_s", "cpu.count"])
        self.assertEqual(len(header), 18)
        self.assertEqual(rows[3].split(",")[header.index("load.load1")], "0.5")

    def test_plot_sparkline(self):
        rc, out, _ = gctl("log", "plot", "--field", "cpu.usage_pct", "--field",
                          "cpu.per_cpu.1.usage_pct", "--width", "20",
                          *fixture_files("metrics.ndjson.2", "metrics.ndjson.1", "metrics.ndjson"))
        self.assertEqual(rc, 0)
        self.assertEqual(out,
                         "cpu.usage_pct  min 10  max 100  (10 samples)\n"
                         "▁▁▂▂▃▃▃▃▄▄▄▅▅▆▆▆▆▇▇█\n"
                         "cpu.per_cpu.1.usage_pct  min 10  max 100  (10 samples)\n"
                         "██▇▇▆▆▆▆▅▅▅▄▄▃▃▃▃▂▂▁\n"
                         "2025-06-01T00:00:00Z .. 2025-06-01T00:04:30Z\n")

    def test_plot_needs_a_field_with_values(self):
        self.assertEqual(gctl("log", "plot", *fixture_files("metrics.ndjson"))[0], 2)
        rc, _, err = gctl("log", "plot", "--field", "nosuch", *fixture_files("metrics.ndjson"))
        self.assertEqual(rc, 1)
        self.assertIn("no value of nosuch", err)

    def test_unreadable_file_exits_1(self):
        rc, _, err = gctl("log", "summary", "/nonexistent/metrics.ndjson")
        self.assertEqual(rc, 1)
        self.assertIn("No such file", err)

    @unittest.skipUnless(shutil.which("rsvg-convert"), "rsvg-convert (librsvg2-bin) is not installed")
    def test_svg_renders(self):
        with tempfile.TemporaryDirectory() as d:
            svg, png = os.path.join(d, "cpu.svg"), os.path.join(d, "cpu.png")
            rc, out, err = gctl("log", "plot", "--field", "cpu.usage_pct", "--field",
                                "network.eth0.rx_bytes_per_s", "--out", svg,
                                *fixture_files("metrics.ndjson.2", "metrics.ndjson.1",
                                               "metrics.ndjson"))
            self.assertEqual((rc, out), (0, ""), err)
            with open(svg) as f:
                text = f.read()
            # Axes labels: round times, and a value scale up to 10000.
            for label in (">00:00<", ">00:01<", ">00:04<", ">10000<", ">0<", "cpu.usage_pct"):
                self.assertIn(label, text)
            r = subprocess.run(["rsvg-convert", "-o", png, svg], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "")
            with open(png, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual(struct.unpack(">II", head[16:24]), (900, 360))


class ByDomainTest(unittest.TestCase):
    """log summary --by-domain DIR over a tree laid out as guestd-hub's
    log.dir: DIR/DOMAIN/metrics.ndjson and its rotated files."""

    HEAD = ("domain  samples                  from                    to  cpu% avg  cpu% max"
            "  mem% avg  mem% max  load1 avg  load1 max    health  bad\n")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def guest(self, name, files=(), data=None):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        for f in files:
            shutil.copy(os.path.join(LOGS, f), d)
        if data is not None:
            with open(os.path.join(d, "metrics.ndjson"), "wb") as f:
                f.write(data)
        return d

    def test_a_row_per_guest_sorted_with_its_rotated_files(self):
        self.guest("vm-b", ["metrics.ndjson"])
        self.guest("vm-a", ["metrics.ndjson", "metrics.ndjson.1", "metrics.ndjson.2"])
        os.mkdir(os.path.join(self.dir, "not-a-guest"))           # no log: no row
        open(os.path.join(self.dir, "README"), "w").close()        # a file beside: no row
        rc, out, err = gctl("log", "summary", "--by-domain", self.dir)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        # vm-a's figures are those of `log summary` over the same three files;
        # its health is the last health line's status (in metrics.ndjson.1).
        self.assertEqual(out, self.HEAD +
                         "vm-a         10  2025-06-01T00:00:00Z  2025-06-01T00:04:30Z        55"
                         "       100     50.23     50.45       1.12       2.25  degraded    2\n"
                         "vm-b          4  2025-06-01T00:03:00Z  2025-06-01T00:04:30Z        85"
                         "       100     50.38     50.45       1.88       2.25         -    1\n")

    def test_empty_log_and_last_line_without_newline(self):
        self.guest("idle", data=b"")
        with open(os.path.join(LOGS, "metrics.ndjson")) as f:
            lines = f.read().splitlines()
        # One good sample, its newline cut: still a sample.
        good = next(l for l in lines if l.startswith('{"event":"metrics"'))
        self.guest("cut", data=good.encode())
        rc, out, err = gctl("log", "summary", "--by-domain", "--field", "cpu.usage_pct",
                            "--field", "nosuch", self.dir)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [
            "domain  samples                  from                    to  cpu.usage_pct avg"
            "  cpu.usage_pct max  nosuch avg  nosuch max  health  bad",
            "cut           1  2025-06-01T00:03:00Z  2025-06-01T00:03:00Z                 70"
            "                 70           -           -       -    0",
            "idle          0                     -                     -                  -"
            "                  -           -           -       -    0"])

    def test_domain_names_are_escaped(self):
        self.guest("vm\x1b]0;owned\x07", ["metrics.ndjson"])
        rc, out, _ = gctl("log", "summary", "--by-domain", self.dir)
        self.assertEqual(rc, 0)
        self.assertNotIn("\x1b", out)
        self.assertEqual(out.splitlines()[1].split()[0], "vm\\x1b]0;owned\\x07")

    def test_an_unreadable_guest_is_named_and_the_others_still_shown(self):
        self.guest("vm-a", ["metrics.ndjson"])
        broken = self.guest("vm-x")
        os.mkdir(os.path.join(broken, "metrics.ndjson"))  # cannot be read, even as root
        rc, out, err = gctl("log", "summary", "--by-domain", self.dir)
        self.assertEqual(rc, 1)
        self.assertEqual(err, "guestctl: %s/metrics.ndjson: Is a directory\n" % broken)
        self.assertEqual([l.split()[0] for l in out.splitlines()], ["domain", "vm-a"])

    def test_empty_or_missing_dir_exits_1(self):
        rc, out, err = gctl("log", "summary", "--by-domain", self.dir)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "guestctl: %s: no guest's log (DOMAIN/metrics.ndjson) in it\n"
                         % self.dir)
        rc, out, err = gctl("log", "summary", "--by-domain", self.dir + "/nonexistent")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "guestctl: %s/nonexistent: No such file or directory\n" % self.dir)

    def test_usage(self):
        rc, _, err = gctl("log", "show", "--by-domain", self.dir)
        self.assertEqual(rc, 2)
        self.assertIn("--by-domain goes with log summary", err)
        rc, _, err = gctl("log", "summary", "--by-domain", self.dir, self.dir)
        self.assertEqual(rc, 2)
        self.assertIn("takes one DIR", err)


class ManPageTest(unittest.TestCase):
    def test_every_option_is_in_the_man_page(self):
        rc, out, _ = gctl("--help")
        self.assertEqual(rc, 0)
        with open(MAN) as f:
            man = f.read().replace("\\-", "-")
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", out))
        self.assertGreater(len(options), 10)
        for opt in sorted(options):
            self.assertIn(opt, man)
        for word in ("call", "watch", "show", "summary", "export", "plot", "EXIT STATUS"):
            self.assertIn(word, man)


if __name__ == "__main__":
    unittest.main(verbosity=2)
