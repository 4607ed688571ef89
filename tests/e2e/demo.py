"""README's first command: boot a real QEMU VM with guestd inside and talk to
it from the host over its virtio-serial port, saying what happens as it goes."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm as vmlib  # noqa: E402


def say(msg):
    print("demo: " + msg, flush=True)


def show(title, obj):
    print("---- %s" % title)
    print(json.dumps({k: v for k, v in obj.items() if k != "_t"}, indent=2)[:3000], flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--guestd", default=os.environ.get("GUESTD_BIN", "build/guestd"))
    ap.add_argument("--samples", type=int, default=3)
    opts = ap.parse_args()
    guestd = os.path.abspath(opts.guestd)

    say("fetching a Debian kernel (cached in %s) and building the guest's initramfs" % vmlib.CACHE)
    machine = vmlib.VM(name="demo", guestd_bin=guestd,
                       guestd_args=["--channel", "virtio-serial:/dev/virtio-ports/org.guestd.agent.0",
                                    "-c", "/dev/null", "--set", "metrics.interval_ms=2000",
                                    "--set", "metrics.log_path=none"])
    say("booting the VM under QEMU (TCG; about 10 s)")
    with machine:
        say("guest up in %.1f s; attaching the host to the port %s" % (machine.boot_seconds, machine.port_path))
        host = vmlib.Host(machine.port_path).connect()
        hello = host.wait_event("hello", timeout=10)
        show("hello (pushed by the agent as the host attached)", hello)
        show("ping", host.request("ping"))
        show("system.info", host.request("system.info"))
        show("exec uname -a", host.request("exec", {"argv": ["uname", "-a"], "timeout_ms": 5000}))
        say("waiting for %d pushed metrics samples (every 2 s)" % opts.samples)
        for _ in range(opts.samples):
            m = host.wait_event("metrics", timeout=15)
            d = m["data"]
            cpu = d.get("cpu", {})
            mem = d.get("memory", {})
            load = d.get("load", {})
            print("metrics seq %-4d cpu %5.1f%%  mem used %5.1f%% of %d MiB  load1 %.2f  procs %s"
                  % (m["seq"], cpu.get("usage_pct", 0.0), mem.get("used_pct", 0.0),
                     mem.get("total_bytes", 0) >> 20, load.get("load1", 0.0),
                     load.get("procs_total", "?")), flush=True)
        show("health.get", host.request("health.get"))
        host.close()
        say("shutting the VM down")
    say("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vmlib.E2EError as e:
        print("demo: failed: %s" % e, file=sys.stderr)
        sys.exit(1)
