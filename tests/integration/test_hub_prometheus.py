"""guestd-hub's /metrics against real guestd agents, read with urllib and
scraped by a real Prometheus server (Debian's prometheus, on loopback with
a temporary config and data directory): each guest's counters and memory
match the samples the agents made, the HTTP answers (Content-Type, gzip,
/healthz, 404, 405), a stopped agent's series go after 3 of its intervals
while its port stays held, and a killed agent's guestd_up falls to 0 in
Prometheus within 3 intervals."""
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, scaled  # noqa: E402
from hubhost import Hub, free_port, http, parse, series  # noqa: E402

INTERVAL_S = 1.0
AGENT_ARGS = ("--set", "metrics.interval_ms=%d" % (INTERVAL_S * 1000),
              "--set", "health.interval_ms=1000")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROMETHEUS = shutil.which("prometheus")


def history(hub, guest):
    """The agent's samples kept in memory, through the hub: {ts_ms: data}."""
    c = hub.client()
    try:
        c.send({"guest": guest, "id": "h", "cmd": "metrics.history"})
        m = c.response("h")
        assert m["ok"], m
        return {s["ts"]: s["data"] for s in m["result"]["samples"]}
    finally:
        c.close()


class HubMetrics(unittest.TestCase):
    """/metrics read directly, with three agents."""

    @classmethod
    def setUpClass(cls):
        cls.agents = {n: Agent(*AGENT_ARGS) for n in ("vm-a", "vm-b", "vm-c")}
        cls.port = free_port()
        cls.url = "http://127.0.0.1:%d" % cls.port
        cls.hub = Hub("http.listen=127.0.0.1:%d" % cls.port,
                      *["guests.%s=%s" % (n, a.sock) for n, a in cls.agents.items()])
        cls.hub.wait_list(lambda g: len(g) == 3 and all(
            x["state"] == "up" and x["last_sample_age_ms"] is not None for x in g.values()))

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        for a in cls.agents.values():
            if a.proc.poll() is None:
                os.kill(a.proc.pid, signal.SIGCONT)
            a.stop()
        assert rc == 0, "guestd-hub exited with %d" % rc  # sanitizers' findings too

    def metrics(self):
        status, headers, body = http(self.url + "/metrics")
        self.assertEqual(status, 200)
        return parse(body.decode())

    def test_http_answers(self):
        status, headers, body = http(self.url + "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], CONTENT_TYPE)
        self.assertIsNone(headers["Content-Encoding"])
        status, headers, zbody = http(self.url + "/metrics", {"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Encoding"], "gzip")
        self.assertEqual(headers["Content-Type"], CONTENT_TYPE)
        text = gzip.decompress(zbody).decode()
        self.assertLess(len(zbody), len(text) / 4)
        # Both are whole expositions with every guest.
        for t in (body.decode(), text):
            self.assertEqual(len(series(parse(t), "guestd_up")), 3)
            self.assertEqual(t.count("# TYPE guestd_cpu_seconds_total counter\n"), 1)
        self.assertEqual(http(self.url + "/healthz")[:3:2], (200, b"ok\n"))
        self.assertEqual(http(self.url + "/nothing")[0], 404)
        status, headers, _ = http(self.url + "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")

    def test_values_are_the_samples(self):
        for name in self.agents:
            # Until a scrape and the history agree on the latest sample.
            deadline = time.time() + scaled(10)
            while True:
                m = self.metrics()
                ts = series(m, "guestd_last_sample_timestamp_seconds", domain=name)
                self.assertEqual(len(ts), 1, name)
                ts_ms = round(list(ts.values())[0] * 1000)
                samples = history(self.hub, name)
                if ts_ms in samples:
                    break
                self.assertLess(time.time(), deadline, "no sample at %d in %s" % (ts_ms, name))
            s = samples[ts_ms]
            for c in s["cpu"]["per_cpu"]:
                for mode, v in c["seconds"].items():
                    got = series(m, "guestd_cpu_seconds_total", domain=name, cpu=str(c["cpu"]),
                                 mode=mode)
                    self.assertEqual(list(got.values()), [v], (name, c["cpu"], mode))
            self.assertEqual(series(m, "guestd_memory_MemTotal_bytes", domain=name),
                             {("guestd_memory_MemTotal_bytes", frozenset({("domain", name)})):
                              s["memory"]["total_bytes"]})
            self.assertEqual(list(series(m, "guestd_memory_MemAvailable_bytes",
                                         domain=name).values()),
                             [s["memory"]["available_bytes"]])
            for fs in s["filesystems"]:
                if fs["status"] != "ok":
                    continue
                got = series(m, "guestd_filesystem_files_free", domain=name,
                             mountpoint=fs["mount"])
                self.assertEqual(list(got.values()), [fs["inodes_free"]])
            info = series(m, "guestd_guest_info", domain=name)
            self.assertEqual(len(info), 1)
            labels = dict(list(info)[0][1])
            self.assertEqual(labels["kernel"], os.uname().release)
            self.assertRegex(labels["agent_version"], r"^\d+\.\d+\.\d+")
        # The hub's own figures.
        m = self.metrics()
        self.assertEqual(m[("guestd_hub_guests", frozenset())], 3)
        self.assertGreaterEqual(m[("guestd_hub_samples_total", frozenset())], 3)

    def test_z_stopped_agent_loses_its_series_after_3_intervals(self):
        a = self.agents["vm-c"]
        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped = time.time()
        try:
            went = None
            while time.time() < stopped + scaled(10):
                m = self.metrics()
                up = series(m, "guestd_up", domain="vm-c")
                if list(up.values()) == [0.0]:
                    went = time.time() - stopped
                    break
                time.sleep(0.1)
            self.assertIsNotNone(went, "guestd_up of a stopped agent never fell to 0")
            # Not before 3 intervals since its last sample (up to one
            # interval before the stop), not much after.
            self.assertGreater(went, 2 * INTERVAL_S - 0.2)
            self.assertLess(went, scaled(3 * INTERVAL_S + 1.5))
            # Its port is still held, and nothing else of it is served.
            self.assertEqual(list(series(m, "guestd_guest_connected", domain="vm-c").values()),
                             [1.0])
            mine = [k for k in m if ("domain", "vm-c") in k[1]]
            self.assertEqual(sorted(k[0] for k in mine), ["guestd_guest_connected", "guestd_up"])
            # The others are untouched.
            self.assertEqual(len(series(m, "guestd_cpu_seconds_total", domain="vm-a")) > 0, True)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)


@unittest.skipUnless(PROMETHEUS, "prometheus is not installed")
class TopProcesses(unittest.TestCase):
    """http.top_processes: off by default, and with it on the guests' top
    processes are series of their own."""

    def scrape(self, *hub_args):
        port = free_port()
        agent = Agent(*AGENT_ARGS)
        hub = Hub("http.listen=127.0.0.1:%d" % port, "guests.vm-t=%s" % agent.sock, *hub_args)
        try:
            hub.wait_list(lambda g: g.get("vm-t", {}).get("last_sample_age_ms") is not None,
                          timeout=scaled(10))
            status, _, body = http("http://127.0.0.1:%d/metrics" % port)
            self.assertEqual(status, 200)
            return parse(body.decode())
        finally:
            rc = hub.stop()
            agent.stop()
            self.assertEqual(rc, 0)

    def test_off_by_default(self):
        got = self.scrape()
        self.assertTrue(series(got, "guestd_up", domain="vm-t"))
        self.assertFalse([k for k in got if k[0].startswith("guestd_top_process")])

    def test_on_serves_the_top_processes(self):
        got = self.scrape("http.top_processes=true")
        cpu = series(got, "guestd_top_process_cpu_ratio", domain="vm-t")
        rss = series(got, "guestd_top_process_resident_memory_bytes", domain="vm-t")
        self.assertTrue(cpu)
        self.assertEqual(len(cpu), len(rss))
        for (_, labels), v in rss.items():
            names = dict(labels)
            self.assertTrue(names["pid"].isdigit() and names["name"], labels)
            self.assertGreaterEqual(v, 0)  # a kernel thread among the top has none
        self.assertTrue([v for v in rss.values() if v > 0], rss)


class RealPrometheus(unittest.TestCase):
    """A Prometheus server scraping the hub every second."""

    @classmethod
    def setUpClass(cls):
        cls.agents = {n: Agent(*AGENT_ARGS) for n in ("web", "db", "cache")}
        hub_port = free_port()
        cls.hub = Hub("http.listen=127.0.0.1:%d" % hub_port,
                      *["guests.%s=%s" % (n, a.sock) for n, a in cls.agents.items()])
        cls.dir = tempfile.mkdtemp(prefix="guestd-prom-it-")
        cfg = os.path.join(cls.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: guestd-hub\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n"
                    # docs/prometheus.md's relabel rule, on a second job.
                    "  - job_name: node-view\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n"
                    "    metric_relabel_configs:\n"
                    "      - source_labels: [__name__]\n        regex: guestd_(.*)\n"
                    "        target_label: __name__\n        replacement: node_$1\n"
                    % (hub_port, hub_port))
        cls.prom_port = free_port()
        cls.api = "http://127.0.0.1:%d/api/v1/" % cls.prom_port
        cls.prom_log = open(os.path.join(cls.dir, "prometheus.log"), "wb")
        cls.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(cls.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port],
            stdout=cls.prom_log, stderr=subprocess.STDOUT)
        deadline = time.time() + scaled(30)
        while True:
            try:
                if http("http://127.0.0.1:%d/-/ready" % cls.prom_port)[0] == 200:
                    break
            except OSError:
                pass
            if cls.prom.poll() is not None or time.time() > deadline:
                raise RuntimeError("prometheus did not start:\n" + cls.log())
            time.sleep(0.2)

    @classmethod
    def log(cls):
        cls.prom_log.flush()
        with open(os.path.join(cls.dir, "prometheus.log"), errors="replace") as f:
            return f.read()[-3000:]

    @classmethod
    def tearDownClass(cls):
        cls.prom.terminate()
        cls.prom.wait(20)
        cls.prom_log.close()
        rc = cls.hub.stop()
        for a in cls.agents.values():
            a.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, "guestd-hub exited with %d" % rc

    def query(self, expr):
        """{domain: (value, labels)} of an instant query."""
        status, _, body = http(self.api + "query?" + urllib.parse.urlencode({"query": expr}))
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual(res["status"], "success", res)
        return {r["metric"].get("domain"): (float(r["value"][1]), r["metric"])
                for r in res["data"]["result"]}

    def wait_query(self, expr, match, timeout=20):
        deadline = time.time() + scaled(timeout)
        while True:
            got = self.query(expr)
            if match(got):
                return got
            if time.time() > deadline:
                self.fail("%s never matched: %r\n%s" % (expr, got, self.log()))
            time.sleep(0.2)

    def test_a_counters_and_memory_match_the_samples(self):
        names = set(self.agents)
        self.wait_query("guestd_up", lambda g: set(g) == names and all(v == 1 for v, _ in g.values()))
        for name in sorted(names):
            # One evaluation: the CPU counter and the timestamp of the sample
            # it came from, then that sample in the agent's history.
            expr = 'guestd_cpu_seconds_total{domain="%s",cpu="0",mode="user"}' % name
            for _ in range(50):
                ts = self.query('guestd_last_sample_timestamp_seconds{domain="%s"}' % name)
                cpu = self.query(expr)
                ts2 = self.query('guestd_last_sample_timestamp_seconds{domain="%s"}' % name)
                if name in ts and name in cpu and ts == ts2:
                    break
                time.sleep(0.1)
            ts_ms = round(ts[name][0] * 1000)
            samples = history(self.hub, name)
            self.assertIn(ts_ms, samples, "%s: no sample at %d" % (name, ts_ms))
            s = samples[ts_ms]
            per0 = [c for c in s["cpu"]["per_cpu"] if c["cpu"] == 0][0]
            self.assertEqual(cpu[name][0], per0["seconds"]["user"], name)
            self.assertEqual(cpu[name][1]["job"], "guestd-hub")
            mem = self.query('guestd_memory_MemTotal_bytes{domain="%s"}' % name)
            self.assertEqual(mem[name][0], s["memory"]["total_bytes"])
            # The node_ names through the one relabel rule.
            node = self.wait_query('node_memory_MemTotal_bytes{domain="%s",job="node-view"}'
                                   % name, lambda g: name in g)
            self.assertEqual(node[name][0], s["memory"]["total_bytes"])
            node = self.query('count by (domain) (node_cpu_seconds_total{domain="%s"})' % name)
            self.assertEqual(node[name][0], 8 * os.sysconf("SC_NPROCESSORS_ONLN"))
            # rate() of the counter works: CPUs were busy for some share.
            r = self.wait_query('sum by (domain) (rate(guestd_cpu_seconds_total{domain="%s",'
                                'mode!="idle"}[5s]))' % name, lambda g: name in g)
            self.assertGreaterEqual(r[name][0], 0.0)
            self.assertLessEqual(r[name][0], os.cpu_count() * 1.1)

    def test_b_killed_agent_goes_down_within_3_intervals(self):
        self.wait_query('guestd_up{domain="db"}', lambda g: g.get("db", (0,))[0] == 1)
        a = self.agents["db"]
        a.proc.kill()
        killed = time.time()
        self.wait_query('guestd_up{domain="db"}', lambda g: g.get("db", (1,))[0] == 0,
                        timeout=3 * INTERVAL_S + 5)
        took = time.time() - killed
        self.assertLess(took, scaled(3 * INTERVAL_S + 1.0), "guestd_up took %.1f s" % took)
        got = self.query("guestd_up")
        self.assertEqual({d: v for d, (v, _) in got.items()}, {"web": 1.0, "db": 0.0, "cache": 1.0})
        # Prometheus marks the gone series stale: no current CPU value of db.
        self.wait_query('guestd_cpu_seconds_total{domain="db"}', lambda g: "db" not in g,
                        timeout=5)


if __name__ == "__main__":
    unittest.main()
