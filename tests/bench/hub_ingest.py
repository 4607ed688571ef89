"""guestd-hub's ingest cost: N fake guests (one process, selectors) replay a
real guestd hello and metrics line, one sample per guest per second, on
sockets a glob finds; prints the hub's CPU share and RSS over a window.

  python3 tests/bench/hub_ingest.py [N=500] [SECONDS=30] [--log-dir]

The sample line is taken from a real guestd started for the purpose
(build/guestd), so its size is what this machine's agent sends."""
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("GUESTD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))


def real_lines(d):
    sock = os.path.join(d, "real.sock")
    agent = subprocess.Popen([os.path.join(BUILD, "guestd"), "--channel", "unix-listen:" + sock,
                              "-c", "/dev/null", "--set", "metrics.log_path=none",
                              "--set", "metrics.interval_ms=200"], stderr=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.01)
    time.sleep(0.1)
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rb")
    got = {}
    while len(got) < 2:
        line = f.readline()
        ev = json.loads(line).get("event")
        if ev in ("hello", "metrics"):
            got[ev] = line
    s.close()
    agent.terminate()
    agent.wait()
    return got["hello"], got["metrics"]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 500
    window = float(args[1]) if len(args) > 1 else 30.0
    d = tempfile.mkdtemp(prefix="guestd-hub-bench-")
    hello, sample = real_lines(d)
    gdir = os.path.join(d, "g")
    os.mkdir(gdir)
    sel = selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(gdir, "g%03d.sock" % i))
        s.listen(2)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    hub_args = [os.path.join(BUILD, "guestd-hub"), "-c", "/dev/null",
                "--set", "hub.socket=" + os.path.join(d, "hub.sock"),
                "--set", "http.listen=none", "--set", "discovery.globs=%s/*.sock" % gdir]
    if "--log-dir" in sys.argv:
        hub_args += ["--set", "log.dir=" + os.path.join(d, "logs")]
    hub = subprocess.Popen(hub_args, stderr=subprocess.DEVNULL)
    conns = []
    start = time.time()
    t_next = start
    t0 = c0 = None
    while True:
        now = time.time()
        if t0 is None and len(conns) == n and now - start > 3:
            t0, c0 = now, cpu_ticks(hub.pid)
        if t0 is not None and now - t0 >= window:
            break
        for key, _ in sel.select(timeout=max(0.0, t_next - now)):
            c, _ = key.fileobj.accept()
            c.sendall(hello)
            conns.append(c)
        if time.time() >= t_next:
            t_next += 1.0
            for c in conns:
                try:
                    c.send(sample)
                except OSError:
                    pass
    used = (cpu_ticks(hub.pid) - c0) / os.sysconf("SC_CLK_TCK")
    elapsed = time.time() - t0
    print("guests %d, sample %d bytes, %.0f s: hub CPU %.2f%% of one core, %.1f us per sample, "
          "RSS %.1f MiB%s" % (n, len(sample), elapsed, 100 * used / elapsed,
                              1e6 * used / (n * elapsed), rss_kb(hub.pid) / 1024,
                              " (log.dir on)" if "--log-dir" in sys.argv else ""))
    hub.terminate()
    hub.wait()
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
