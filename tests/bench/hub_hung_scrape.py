"""What a hung guest adds to a guestd-hub scrape: N real guestd agents (unix
sockets, samples every second) held by a real hub; GET /metrics with gzip,
timed from the client, first with every agent running, then with one agent
stopped by SIGSTOP (its port still held, nothing read from it), then again
after SIGCONT. Prints p50 and p99 wall time per phase.

  python3 tests/bench/hub_hung_scrape.py [N=20] [SCRAPES=200]"""
import os
import signal
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))
from host import Agent  # noqa: E402
from hubhost import Hub  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(url):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, len(body)


def phase(name, url, n):
    times = []
    size = 0
    for _ in range(n):
        ms, size = scrape(url)
        times.append(ms)
        time.sleep(0.01)
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print("%-28s p50 %6.2f ms  p99 %6.2f ms  (%d scrapes, %d bytes gzipped)" %
          (name, p50, p99, n, size))
    return p50, p99


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    scrapes = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    agents = [Agent("--set", "metrics.interval_ms=1000") for _ in range(n)]
    port = free_port()
    sets = ["http.listen=127.0.0.1:%d" % port] + \
        ["guests.vm%d=%s" % (i, a.sock) for i, a in enumerate(agents)]
    hub = Hub(*sets)
    url = "http://127.0.0.1:%d/metrics" % port
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                text = urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError:  # not listening yet
                time.sleep(0.1)
                continue
            if text.count("guestd_up{") >= n and 'guestd_up{domain="vm0"} 1' in text:
                break
            time.sleep(0.2)
        else:
            sys.exit("the hub did not report every guest up")
        phase("all %d guests running" % n, url, scrapes)
        os.kill(agents[0].pid(), signal.SIGSTOP)
        phase("vm0 stopped (SIGSTOP)", url, scrapes)
        os.kill(agents[0].pid(), signal.SIGCONT)
        phase("vm0 running again", url, scrapes)
    finally:
        hub.stop()
        for a in agents:
            a.stop()


if __name__ == "__main__":
    main()
