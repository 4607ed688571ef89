"""guestd as a process: flags, exit codes, --dump-config, SIGTERM, SIGHUP,
and a start/stop cycle under valgrind."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import GUESTD, Agent  # noqa: E402


def run(*args):
    return subprocess.run([GUESTD, *args], capture_output=True, text=True, timeout=30)


class FlagsTest(unittest.TestCase):
    def test_version_and_help(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^guestd \d+\.\d+\.\d+ \(protocol 1\)\n$")
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--dump-config", r.stdout)

    def test_usage_errors_exit_2(self):
        self.assertEqual(run("--no-such-flag").returncode, 2)
        self.assertEqual(run("stray-argument").returncode, 2)

    def test_out_of_range_names_key_and_range(self):
        r = run("--dump-config", "--set", "metrics.interval_ms=5")
        self.assertEqual(r.returncode, 2)
        self.assertIn("metrics.interval_ms", r.stderr)
        self.assertIn("100..86400000", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_missing_config_file_is_an_error(self):
        r = run("-c", "/nonexistent/guestd.conf", "--dump-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/guestd.conf", r.stderr)

    def test_bad_channel_spec(self):
        r = run("-c", "/dev/null", "--channel", "carrier-pigeon:x", "--dump-config")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_runtime_failure_exits_1_and_logs_for_journald(self):
        args = [GUESTD, "-c", "/dev/null", "--channel", "unix-listen:/nonexistent/dir/s"]
        env = dict(os.environ, JOURNAL_STREAM="8:1234")
        r = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 1)
        # Under journald: a priority prefix and no timestamp of our own.
        self.assertIn("<3>cannot listen on /nonexistent/dir/s: No such file or directory\n", r.stderr)
        env.pop("JOURNAL_STREAM")
        r = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z guestd\[\d+\] error: "
                                   r"cannot listen on /nonexistent/dir/s")

    def test_dump_config_loads_back_unchanged(self):
        first = run("-c", "/dev/null", "--dump-config", "--set", "metrics.interval_ms=1500",
                    "--set", "commands.deny=exec*,power.*", "--channel", "unix-listen:/tmp/a b.sock",
                    "--log-level", "debug")
        self.assertEqual(first.returncode, 0, first.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(first.stdout)
        try:
            second = run("-c", f.name, "--dump-config")
            self.assertEqual(second.returncode, 0, second.stderr)
            self.assertEqual(second.stdout, first.stdout)
            self.assertIn("interval_ms = 1500", first.stdout)
        finally:
            os.unlink(f.name)


class DocsTest(unittest.TestCase):
    def test_every_key_is_documented(self):
        """docs/configuration.md lists every key --dump-config prints."""
        import re
        dump = run("-c", "/dev/null", "--dump-config").stdout
        keys, section = [], None
        for line in dump.splitlines():
            m = re.match(r"\[(\w+)\]", line)
            if m:
                section = m.group(1)
            m = re.match(r"(\w+) =", line)
            if m:
                keys.append("%s.%s" % (section, m.group(1)))
        doc_path = os.path.join(os.path.dirname(__file__), "../../docs/configuration.md")
        with open(doc_path) as f:
            documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)`", f.read(), re.M))
        self.assertGreater(len(keys), 20)
        self.assertEqual(set(keys), documented)


class SignalsTest(unittest.TestCase):
    def test_sigterm_exits_0_within_a_second(self):
        agent = Agent()
        host = agent.connect()
        self.assertTrue(host.call("ping")["ok"])
        start = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        rc = agent.proc.wait(5)
        elapsed = time.monotonic() - start
        host.close()
        print("SIGTERM to exit: %.1f ms" % (elapsed * 1000))
        self.assertEqual(rc, 0, agent.stderr())
        self.assertLess(elapsed, 1.0)
        self.assertNotIn("handles left open", agent.stderr())
        agent.stop()

    def test_sighup_reload_keeps_running_config_on_error(self):
        agent = Agent(config_text="[metrics]\ninterval_ms = 1000\n")
        cfg = os.path.join(agent.dir.name, "guestd.conf")
        with open(cfg, "w") as f:
            f.write("[metrics]\ninterval_ms = 200\n")
        agent.proc.send_signal(signal.SIGHUP)
        host = agent.connect()
        deadline = time.time() + 5
        while "configuration reloaded" not in agent.stderr() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("configuration reloaded", agent.stderr())
        # metrics now every 200 ms: two samples arrive well within a second
        a = host.wait_event("metrics", timeout=2)
        b = host.wait_event("metrics", timeout=2)
        self.assertLess(b["ts"] - a["ts"], 900)
        with open(cfg, "w") as f:
            f.write("[metrics]\ninterval_ms = sometimes\n")
        agent.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "reload failed" not in agent.stderr() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("reload failed, keeping the running configuration", agent.stderr())
        self.assertIn("guestd.conf:2: metrics.interval_ms", agent.stderr())
        self.assertTrue(host.call("ping")["ok"])
        host.close()
        self.assertEqual(agent.stop(), 0)


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
@unittest.skipIf(os.environ.get("GUESTD_SANITIZED") == "1", "the binary is built with sanitizers")
class ValgrindTest(unittest.TestCase):
    def test_start_stop_cycle_is_clean(self):
        d = tempfile.mkdtemp(prefix="guestd-vg-")
        sock = os.path.join(d, "agent.sock")
        log = os.path.join(d, "valgrind.log")
        proc = subprocess.Popen(
            ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
             "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
             "--log-file=" + log, GUESTD, "-c", "/dev/null", "--channel", "unix-listen:" + sock,
             "--set", "metrics.interval_ms=100", "--set", "health.interval_ms=100",
             "--set", "metrics.log_path=none"],
            stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while not os.path.exists(sock):
                self.assertIsNone(proc.poll(), "guestd under valgrind exited early")
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            from host import Host
            host = Host(sock)
            host.wait_event("hello", timeout=20)
            self.assertTrue(host.call("info", timeout=20)["ok"])
            host.wait_event("metrics", timeout=20)
            host.close()
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30)
            with open(log) as f:
                report = f.read()
            self.assertEqual(rc, 0, report)
            self.assertIn("ERROR SUMMARY: 0 errors", report)
        finally:
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
