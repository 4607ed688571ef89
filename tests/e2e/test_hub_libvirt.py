#!/usr/bin/env python3
"""guestd-hub against a real libvirtd and two real TCG domains (issue 18).

test_libvirt.py's private libvirtd (a mount namespace of its own) and its
domain (the busybox initramfs with guestd inside, a virtio-serial channel
org.guestd.agent.0 on a unix socket) are reused, twice: two domains, each
in a directory of its own. guestd-hub (build/guestd-hub) follows the
private libvirtd (discovery.libvirt_uri=qemu:///system inside the
namespace) and holds both guests' ports; this script talks only to the hub.

Checks:
  - the hub, started before any domain, attaches each domain that
    `virsh create` starts (its list op shows it, source libvirt) within 2 s
    of virsh returning; both guests say hello through it
  - guestctl --hub SOCK list shows both; guestctl --hub SOCK -d NAME
    call ping and watch --count work while the hub holds the port
  - `virsh destroy`: the hub drops the domain within 2 s; `virsh create`
    of it again: attached within 2 s, and its new boot says hello
  - libvirtd stopped (SIGTERM) and started again: the QEMU processes keep
    running (the check fails, saying so, if they did not), the hub keeps its
    guests meanwhile; a domain whose QEMU is killed while libvirtd is away
    is dropped once libvirtd is back; the hub reconnects and the events it
    registered anew work: a create and a destroy after the restart are
    attached and dropped within 2 s
  - hub-b started without the guestd channel is not attached; the channel
    hot-plugged (virsh attach-device, libvirt's device-added event): attached
    within 2 s; unplugged (detach-device, device-removed): dropped within 2 s
  - libvirtd stopped (SIGSTOP) for 30 s, past the keepalive's close and into
    the reconnect: every hub list answer comes within 0.5 s; SIGCONT: it is
    connected again
  - the hub exits 0 on SIGTERM
discovery.relist_ms is an hour: no periodic re-list hides a lost event.

Figures: attach and drop latency (virsh's return to the hub's list), the
reconnect time after libvirtd's return. Environment: GUESTD_BIN,
GUESTD_BUILD_DIR (guestd-hub, guestctl), and those of vm.py.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report as R  # noqa: E402
import test_libvirt as L  # noqa: E402
import vm as V  # noqa: E402

LIMIT_S = 2.0  # the bound for attach and drop


def build_dir():
    return os.environ.get("GUESTD_BUILD_DIR",
                          os.path.join(HERE, "..", "..", "build"))


class Hub:
    """build/guestd-hub following the private libvirtd; list() is its list op."""

    def __init__(self, work):
        self.bin = os.path.join(build_dir(), "guestd-hub")
        self.guestctl = os.path.join(build_dir(), "guestctl")
        self.sock = os.path.join(work, "hub.sock")
        self.log_path = os.path.join(work, "hub.log")
        self.proc = None
        self.client = None

    def start(self):
        argv = [self.bin, "-c", "/dev/null", "--set", "hub.socket=" + self.sock,
                "--set", "http.listen=none", "--set", "hub.log_level=debug",
                "--set", "discovery.libvirt_uri=qemu:///system",
                # No periodic re-list while the test runs: events (and the
                # list on each connect) are all there is.
                "--set", "discovery.relist_ms=3600000"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "wb"), preexec_fn=L._pdeathsig)
        self.client = V.Host(self.sock, "hub").connect(timeout=10)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def list(self, timeout=5):
        self.client.send({"op": "list", "id": "list"})
        m = self.client.wait_for(lambda m: m.get("id") == "list", timeout, "the list")
        assert m.get("ok"), m
        # Events of a watch on this connection stay out of the way.
        self.client.pending = [p for p in self.client.pending if "event" not in p]
        return {g["name"]: g for g in m["result"]["guests"]}

    def wait_list(self, pred, timeout, what, t0=None):
        """Polls the list op every 20 ms until pred(guests); the seconds it
        took from t0 (default: now)."""
        t0 = time.monotonic() if t0 is None else t0
        while True:
            guests = self.list()
            if pred(guests):
                return time.monotonic() - t0, guests
            if time.monotonic() - t0 > timeout:
                raise V.E2EError("hub: %s not within %.1f s; list: %s"
                                 % (what, timeout, json.dumps(guests)))
            time.sleep(0.02)

    def ctl(self, *args, timeout=60):
        r = subprocess.run([self.guestctl, "--hub", self.sock] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def stop(self):
        if self.client:
            self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return None

    def tail(self, n=40):
        return "".join(self.log_text().splitlines(True)[-n:])


def qemu_pids(names):
    """The QEMU pid of each named domain (libvirt's NAME.pid)."""
    pids = {}
    for path in [os.path.join("/run/libvirt/qemu", n + ".pid") for n in names]:
        try:
            with open(path) as f:
                pids[os.path.basename(path)[:-4]] = int(f.read().strip())
        except (OSError, ValueError):
            pass
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def restart_libvirtd(lv, while_down, timeout=60):
    """Stops the private libvirtd (SIGTERM), runs while_down(), starts it
    again on the same directories; the time it answered again."""
    old = lv.procs[-1]
    old.terminate()
    old.wait(30)
    while_down()
    lv.bind_users()
    argv = ["/usr/sbin/libvirtd", "-f", "/etc/libvirt/libvirtd.conf"]
    err = open(os.path.join(lv.root, "libvirtd.stderr"), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                         preexec_fn=L._pdeathsig)
    lv.procs[-1] = p
    deadline = time.monotonic() + timeout
    while True:
        rc, out = lv.virsh("version", check=False, timeout=30)
        if rc == 0:
            return time.monotonic()
        if p.poll() is not None or time.monotonic() > deadline:
            raise V.E2EError("libvirtd did not come back (status %s): %s" % (p.poll(), lv.tail()))
        time.sleep(0.1)


def run(gbin, work):
    lv = L.Libvirt(work)
    lv.start()
    doms = []
    for name in ("hub-a", "hub-b"):
        d = os.path.join(work, name)
        os.makedirs(d)
        doms.append(L.Domain(lv, d, gbin, name=name))
    a, b = doms
    hub = Hub(work)
    st = {}
    try:
        hub.start()
        assert hub.list() == {}, "guests before any domain runs"

        def timed(dom, what, pred, *virsh):
            """Runs virsh; (seconds from its return to pred(list), seconds virsh took)."""
            t_start = time.monotonic()
            dom.virsh(*virsh)
            t_ret = time.monotonic()
            secs, guests = hub.wait_list(pred, 10, "%s %s" % (dom.name, what), t0=t_ret)
            return secs, t_ret - t_start, guests

        def create(dom):
            """virsh create; the seconds from its return to the hub listing it."""
            secs, took, guests = timed(dom, "attached", lambda g: dom.name in g,
                                       "create", dom.xml_path)
            g = guests[dom.name]
            assert g["source"] == "libvirt" and g["path"] == dom.guestd_sock, g
            V.log("%s: virsh create took %.2f s, listed %.3f s after" % (dom.name, took, secs))
            return secs

        def destroy(dom):
            secs, took, guests = timed(dom, "dropped", lambda g: dom.name not in g,
                                       "destroy", dom.name)
            V.log("%s: virsh destroy took %.2f s, gone %.3f s after" % (dom.name, took, secs))
            return secs, took

        def attach():
            ta = create(a)
            tb = create(b)
            R.figure("attach: virsh create returned to the hub's list showing it",
                     "%s %.3f s, %s %.3f s (limit %.0f s)" % (a.name, ta, b.name, tb, LIMIT_S))
            assert ta < LIMIT_S and tb < LIMIT_S, (ta, tb)
            t0 = time.monotonic()
            hub.wait_list(lambda g: all(g.get(d.name, {}).get("version") for d in doms), 180,
                          "both guests' hello")
            R.figure("both guests booted to hello through the hub", "%.1f s"
                     % (time.monotonic() - t0))
            st["attached"] = True
        if not R.check("the hub attaches each domain virsh create starts", attach):
            return

        def clients():
            rc, out, err = hub.ctl("list")
            V.log("guestctl --hub list:\n" + out)
            assert rc == 0, (rc, err)
            rows = {l.split()[0]: l.split() for l in out.splitlines()[1:] if l.strip()}
            for d in doms:
                assert d.name in rows and rows[d.name][1] == "up" and rows[d.name][-1] == "libvirt", \
                    out
            rc, out, err = hub.ctl("-d", a.name, "call", "ping")
            assert rc == 0, (rc, out, err)
            assert json.loads(out) == {"pong": True}, out
            rc, out, err = hub.ctl("-d", b.name, "watch", "--event", "metrics", "--count", "2",
                                   "--timeout", "20")
            assert rc == 0, (rc, out, err)
            events = [json.loads(l) for l in out.splitlines() if l.strip()]
            assert len(events) == 2 and all(e["event"] == "metrics" for e in events), out
            assert all(e.get("guest") == b.name for e in events), out
        R.check("guestctl --hub list, -d NAME call ping and watch through the hub", clients)

        def drop_and_again():
            td, took = destroy(b)
            R.figure("drop: virsh destroy returned to the hub's list without it",
                     "%.3f s (limit %.0f s; virsh destroy itself took %.2f s)"
                     % (td, LIMIT_S, took))
            assert td < LIMIT_S, td
            assert a.name in hub.list(), "the other domain went too"
            ta = create(b)
            R.figure("attach again: virsh create of the destroyed domain", "%.3f s" % ta)
            assert ta < LIMIT_S, ta
            hub.wait_list(lambda g: g.get(b.name, {}).get("version"), 180,
                          "%s's new boot says hello" % b.name)
            rc, out, err = hub.ctl("-d", b.name, "call", "ping")
            assert rc == 0 and json.loads(out) == {"pong": True}, (rc, out, err)
        R.check("virsh destroy drops the guest; virsh create attaches it again", drop_and_again)

        def libvirtd_restart():
            before = qemu_pids([a.name, b.name])
            assert set(before) == {a.name, b.name}, before
            mark = hub.log_text().count("libvirt: connected to")
            t_stop = time.monotonic()

            def while_down():
                # The hub keeps its guests while libvirtd is away ...
                time.sleep(1)
                guests = hub.list()
                assert guests.get(a.name, {}).get("state") == "up" and b.name in guests, guests
                # ... and a domain that ends meanwhile (its QEMU killed) is
                # only "down" until libvirt can say it is gone.
                os.kill(before[b.name], signal.SIGKILL)
                hub.wait_list(lambda g: g.get(b.name, {}).get("state") == "down", 5,
                              "%s down" % b.name)
            t_up = restart_libvirtd(lv, while_down)
            assert alive(before[a.name]), \
                "the QEMU of %s died with libvirtd in this setup" % a.name
            # Reconnected: a second "connected" line in the hub's log.
            deadline = time.monotonic() + 40
            while hub.log_text().count("libvirt: connected to") <= mark:
                assert time.monotonic() < deadline, "no reconnect:\n" + hub.tail()
                time.sleep(0.05)
            R.figure("reconnect: libvirtd answering again to the hub connected",
                     "%.2f s (libvirtd down %.1f s)" % (time.monotonic() - t_up, t_up - t_stop))
            tk, guests = hub.wait_list(lambda g: b.name not in g, 10,
                                       "%s (killed while libvirtd was down) dropped" % b.name,
                                       t0=t_up)
            R.figure("domain killed while libvirtd was down: dropped after libvirtd answers",
                     "%.2f s" % tk)
            g = guests.get(a.name)
            assert g and g["state"] == "up" and g["reconnects"] == 0, guests
            assert g["last_sample_age_ms"] is not None and g["last_sample_age_ms"] < 3000, g
            rc, out, err = hub.ctl("-d", a.name, "call", "ping")
            assert rc == 0 and json.loads(out) == {"pong": True}, (rc, out, err)
            # The events registered on the new connection work.
            ta = create(b)
            R.figure("attach after the libvirtd restart", "%.3f s" % ta)
            assert ta < LIMIT_S, ta
            td, took = destroy(b)
            R.figure("drop after the libvirtd restart", "%.3f s (virsh destroy took %.2f s)"
                     % (td, took))
            assert td < LIMIT_S, td
        R.check("libvirtd restarted: domains keep running, the hub reconnects, events work",
                libvirtd_restart)

        def hotplug():
            # hub-b again, without the guestd channel: not a guest of the hub.
            with open(b.xml_path) as f:
                xml = f.read()
            chan = re.search(r"\s*<channel type='unix'>\s*<source mode='bind'[^>]*/>\s*"
                             r"<target type='virtio' name='%s'/>\s*</channel>" % V.PORT_NAME, xml)
            assert chan, "no guestd channel in %s" % b.xml_path
            bare = os.path.join(b.work, "bare.xml")
            chan_xml = os.path.join(b.work, "channel.xml")
            with open(bare, "w") as f:
                f.write(xml[:chan.start()] + xml[chan.end():])
            with open(chan_xml, "w") as f:
                f.write(chan.group(0).strip() + "\n")
            b.virsh("create", bare)
            time.sleep(LIMIT_S)
            assert b.name not in hub.list(), "a domain without the channel was attached"
            ta, took, guests = timed(b, "attached", lambda g: b.name in g,
                                     "attach-device", b.name, chan_xml, "--live")
            R.figure("device added: virsh attach-device returned to the hub's list showing it",
                     "%.3f s (virsh took %.2f s)" % (ta, took))
            assert guests[b.name]["path"] == b.guestd_sock, guests[b.name]
            assert ta < LIMIT_S, ta
            td, took, guests = timed(b, "dropped", lambda g: b.name not in g,
                                     "detach-device", b.name, chan_xml, "--live")
            R.figure("device removed: virsh detach-device returned to the hub's list without it",
                     "%.3f s (virsh took %.2f s)" % (td, took))
            assert td < LIMIT_S, td
            assert a.name in guests, guests
        R.check("the guestd channel hot-plugged and unplugged: attached and dropped", hotplug)

        def hung_libvirtd():
            # libvirtd stopped (SIGSTOP) for 30 s: past the hub's keepalive
            # (5 s x 3, then the close) and into its reconnect, which waits on
            # the stopped libvirtd. libvirt runs on the hub's discovery thread,
            # never on its loop: every list answer must come within 0.5 s.
            mark = hub.log_text().count("libvirt: connected to")
            pid = lv.procs[-1].pid
            t0 = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            try:
                worst, n, closed_at = 0.0, 0, None
                while time.monotonic() - t0 < 30:
                    t = time.monotonic()
                    assert a.name in hub.list(timeout=5)
                    took = time.monotonic() - t
                    worst = max(worst, took)
                    n += 1
                    assert took < 0.5, "a list took %.2f s while libvirtd hung (%.1f s in)" % (
                        took, t - t0)
                    if closed_at is None and "closed (reason 2)" in hub.log_text():
                        closed_at = time.monotonic() - t0
                    time.sleep(0.2)
                R.figure("libvirtd stopped 30 s: slowest list answer",
                         "%.3f s (%d lists)" % (worst, n))
                assert closed_at is not None, "keepalive did not close:\n" + hub.tail()
                R.figure("libvirtd stopped: the hub's keepalive closed the connection after",
                         "%.1f s" % closed_at)
            finally:
                os.kill(pid, signal.SIGCONT)
                t_cont = time.monotonic()
            assert a.name in hub.list(timeout=10)
            deadline = time.monotonic() + 40
            while hub.log_text().count("libvirt: connected to") <= mark:
                assert time.monotonic() < deadline, "no reconnect:\n" + hub.tail()
                time.sleep(0.05)
            R.figure("libvirtd went on (SIGCONT) to the hub connected again",
                     "%.2f s" % (time.monotonic() - t_cont))
        R.check("a hung libvirtd: the hub answers throughout, then reconnects", hung_libvirtd)

        def clean_exit():
            rc = hub.stop()
            assert rc == 0, "guestd-hub exit status %s:\n%s" % (rc, hub.tail())
            assert not os.path.exists(hub.sock), "the client socket stayed"
        R.check("guestd-hub exits 0 on SIGTERM", clean_exit)
    finally:
        if R.any_failed():
            for d in doms:
                d.dump_logs()
            print("----- guestd-hub log -----\n" + hub.tail(60))
        hub.stop()
        lv.stop()


def main():
    for tool in ("guestd-hub", "guestctl"):
        if not os.access(os.path.join(build_dir(), tool), os.X_OK):
            print("FAIL: no %s in %s (set GUESTD_BUILD_DIR)" % (tool, build_dir()))
            return 1
    return L.main(run, "test_hub_libvirt", __file__)


if __name__ == "__main__":
    sys.exit(main())
