"""The command families of issue 5 (process, service, file, power, config,
policy) against the real guestd on a unix socket, as a host uses them."""
import base64
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import VALGRIND, Agent  # noqa: E402


def b64(data):
    return base64.b64encode(data).decode()


class CommandsTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent()
        self.host = self.agent.connect()
        self.tmp = tempfile.TemporaryDirectory(prefix="guestd-cmds-")

    def tearDown(self):
        self.host.close()
        self.assertEqual(self.agent.stop(), 0)
        self.tmp.cleanup()

    def ok(self, cmd, args=None):
        reply = self.host.call(cmd, args)
        self.assertTrue(reply["ok"], reply)
        return reply["result"]

    def error(self, cmd, args, code):
        reply = self.host.call(cmd, args)
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        return reply["error"]["message"]

    # ---- file ----

    def test_file_round_trip(self):
        path = os.path.join(self.tmp.name, "f.bin")
        data = bytes(range(256)) * 10
        self.assertEqual(self.ok("file.write", {"path": path, "data_b64": b64(data), "mode": "0600"}),
                         {"written": len(data)})
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o600)
        r = self.ok("file.read", {"path": path})
        self.assertEqual(base64.b64decode(r["data_b64"]), data)
        self.assertEqual((r["size"], r["eof"]), (len(data), True))
        r = self.ok("file.read", {"path": path, "offset": 10, "max_bytes": 5})
        self.assertEqual(base64.b64decode(r["data_b64"]), data[10:15])
        self.assertFalse(r["eof"])
        self.ok("file.write", {"path": path, "data_b64": b64(b"tail"), "append": True})
        st = self.ok("file.stat", {"path": path})
        self.assertEqual(st["type"], "file")
        self.assertEqual(st["size"], len(data) + 4)
        self.assertEqual(st["mode"], "0600")
        self.assertEqual(st["uid"], os.getuid())
        self.assertAlmostEqual(st["mtime_ms"] / 1000, os.stat(path).st_mtime, delta=0.01)

    def test_file_errors(self):
        missing = os.path.join(self.tmp.name, "missing")
        self.assertIn("No such file", self.error("file.read", {"path": missing}, "not_found"))
        self.error("file.stat", {"path": missing}, "not_found")
        self.assertIn("Is a directory", self.error("file.read", {"path": self.tmp.name}, "failed"))
        self.error("file.read", {"path": "relative"}, "invalid_args")
        self.error("file.write", {"path": missing, "data_b64": "!!"}, "invalid_args")
        self.error("file.write", {"path": missing, "data_b64": "", "mode": "rw"}, "invalid_args")

    # ---- process ----

    def test_process_list_and_kill(self):
        child = subprocess.Popen(["sleep", "100"])
        try:
            procs = self.ok("process.list", {"sort_by": "rss"})["processes"]
            rss = [p["rss_bytes"] for p in procs]
            self.assertEqual(rss, sorted(rss, reverse=True))
            me = [p for p in procs if p["pid"] == self.agent.pid()]
            self.assertEqual(len(me), 1)
            # Under valgrind the process is valgrind's tool (memcheck-amd64-linux).
            if VALGRIND:
                self.assertTrue(me[0]["name"].startswith("memcheck-"), me[0])
            else:
                self.assertEqual(me[0]["name"], "guestd")
            self.assertIn("unix-listen:", me[0]["cmdline"])
            sleeper = [p for p in procs if p["pid"] == child.pid][0]
            self.assertEqual(sleeper["cmdline"], "sleep 100")
            self.assertEqual(sleeper["ppid"], os.getpid())
            for key in ("pid", "ppid", "name", "user", "state", "cpu_pct", "rss_bytes", "cmdline",
                        "started_at"):
                self.assertIn(key, sleeper)
            self.assertEqual(len(self.ok("process.list", {"limit": 3})["processes"]), 3)
            self.assertEqual(self.ok("process.kill", {"pid": child.pid, "signal": "KILL"}),
                             {"killed": True})
            self.assertEqual(child.wait(5), -9)
            self.error("process.kill", {"pid": child.pid}, "not_found")
            self.error("process.kill", {"pid": 1, "signal": "NOPE"}, "invalid_args")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    # ---- service ----

    @unittest.skipIf(os.path.exists("/run/systemd/system"), "systemd runs here: see the VM tests")
    def test_service_unsupported_without_systemd(self):
        self.error("service.list", None, "unsupported")
        self.error("service.status", {"name": "cron"}, "unsupported")
        self.error("service.restart", {"name": "cron"}, "unsupported")

    # ---- config ----

    def test_config_get_and_set(self):
        cfg = self.ok("config.get")
        self.assertEqual(cfg["metrics"]["log_path"], "none")
        self.assertEqual(cfg["metrics"]["interval_ms"], 30000)
        self.assertEqual(self.ok("config.get", {"key": "metrics.interval_ms"}),
                         {"key": "metrics.interval_ms", "value": 30000, "runtime": True})
        self.error("config.get", {"key": "metrics.nope"}, "invalid_args")
        self.error("config.set", {"key": "channel.spec", "value": "stdio"}, "invalid_args")
        self.error("config.set", {"key": "commands.deny", "value": ""}, "invalid_args")
        self.error("config.set", {"key": "metrics.interval_ms", "value": 1}, "invalid_args")
        # A new interval takes effect at once, not after the old 30 s run out.
        self.assertEqual(self.ok("config.set", {"key": "metrics.interval_ms", "value": 200})["value"], 200)
        t0 = time.time()
        self.host.wait_event("metrics", timeout=3)
        self.host.wait_event("metrics", timeout=3)
        self.assertLess(time.time() - t0, 2.5)
        self.assertEqual(self.ok("config.get", {"key": "metrics.interval_ms"})["value"], 200)


class PowerTest(unittest.TestCase):
    def test_reboot_answers_first_then_runs_the_command(self):
        tmp = tempfile.TemporaryDirectory(prefix="guestd-power-")
        marker = os.path.join(tmp.name, "rebooted")
        with Agent("--set", "commands.reboot_argv=touch " + marker) as agent:
            host = agent.connect()
            reply = host.call("power.reboot", {"delay_s": 1})
            self.assertEqual(reply, {"id": "r", "ok": True, "result": {"scheduled": True}})
            self.assertFalse(os.path.exists(marker))
            deadline = time.time() + 10
            while not os.path.exists(marker) and time.time() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(marker))
            # The agent is still there (the substitute did not take it down).
            self.assertEqual(host.call("ping")["result"], {"pong": True})
            host.close()
        tmp.cleanup()

    def test_missing_program_is_refused_before_answering(self):
        with Agent("--set", "commands.poweroff_argv=/nonexistent/poweroff") as agent:
            host = agent.connect()
            reply = host.call("power.shutdown")
            self.assertEqual(reply["error"]["code"], "failed", reply)
            host.close()


class PolicyTest(unittest.TestCase):
    def test_deny_exec(self):
        with Agent("--set", "commands.deny=exec*") as agent:
            host = agent.connect()
            self.assertNotIn("exec", host.hello["data"]["commands"])
            reply = host.call("exec", {"argv": ["true"]})
            self.assertEqual(reply["error"]["code"], "forbidden", reply)
            info = {c["name"]: c["enabled"] for c in host.call("info")["result"]["commands"]}
            self.assertFalse(info["exec"])
            self.assertFalse(info["exec.cancel"])
            self.assertTrue(info["file.read"])
            self.assertTrue(host.call("config.get", {"key": "commands.deny"})["ok"])
            host.close()


if __name__ == "__main__":
    unittest.main()
