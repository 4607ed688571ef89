#!/usr/bin/env python3
"""README's first command (packaging/dev.sh demo): a Debian 12 VM with systemd
and guestd installed from the .deb this build makes, and the host side with
guestctl: the hello, system.info, a few live metrics samples, an exec, then
the VM powered off through the agent. It says what it does as it goes.

Needs root (debootstrap and dpkg in a chroot). The slow parts are cached in
/var/cache/guestd-e2e (the kernel, the Debian root file system), so a second
run takes about a minute; see debian_rootfs.py.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm as V  # noqa: E402
import debian_rootfs as D  # noqa: E402


def say(msg):
    print("\ndemo: " + msg, flush=True)


class Guestctl:
    """The host side: build/guestctl on the VM's port socket, each command
    shown as it would be typed."""

    def __init__(self, binary, sock):
        self.bin = binary
        self.sock = sock

    def argv(self, *args):
        return [self.bin, "-s", self.sock] + list(args)

    def show(self, *args):
        print("$ guestctl -s %s %s" % (os.path.basename(self.sock),
                                       " ".join(shlex.quote(a) for a in args)), flush=True)

    def run(self, *args, timeout=60, echo=True):
        """Runs guestctl and prints what it printed; returns (status, stdout)."""
        if echo:
            self.show(*args)
        res = subprocess.run(self.argv(*args), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=timeout)
        out = res.stdout.decode(errors="replace")
        return res.returncode, out

    def stream(self, *args, timeout=120):
        """Runs guestctl with its output going straight to the terminal."""
        self.show(*args)
        return subprocess.run(self.argv(*args), timeout=timeout).returncode


def indent(text, limit=40):
    rows = text.rstrip("\n").splitlines()
    more = len(rows) - limit
    rows = rows[:limit] + (["  ... (%d more lines)" % more] if more > 0 else [])
    return "\n".join("  " + r for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.environ.get("GUESTD_BUILD_DIR", "build"))
    ap.add_argument("--samples", type=int, default=3, help="live metrics samples to show")
    opts = ap.parse_args()
    build = os.path.abspath(opts.build_dir)
    if os.geteuid() != 0:
        print("demo: needs root (debootstrap, dpkg in a chroot); run it with sudo", file=sys.stderr)
        return 2
    guestctl = os.path.join(build, "guestctl")
    if not os.access(guestctl, os.X_OK):
        print("demo: no %s: build it first (cmake --build %s)" % (guestctl, build), file=sys.stderr)
        return 2
    t_all = time.monotonic()
    work = tempfile.mkdtemp(prefix="guestd-demo-")
    vm = None
    try:
        say("making the .deb from %s (cpack -G DEB)" % build)
        deb = D.build_deb(build, work)
        print("  %s: %s" % (os.path.basename(deb), D.deb_field(deb, "Depends")))

        base_cached = D.base_rootfs_cached(D.deb_depends(deb))
        if base_cached:
            say("making the guest's disk: the cached Debian 12 root file system (%s) "
                "with the .deb installed by dpkg" % base_cached)
        else:
            say("making the guest's disk: debootstrap Debian 12 (minbase, systemd, udev) from %s; "
                "the first time takes about two minutes, then it is cached in %s"
                % (D.mirror(), V.CACHE))
        img, kver, dpkg_out = D.make_image(work, deb, say=lambda m: print("  " + m, flush=True))
        print(indent(dpkg_out))

        say("booting the VM under QEMU (TCG, kernel %s, 512 MiB, the port org.guestd.agent.0 "
            "on %s). Nothing is typed into the guest: udev and systemd start guestd "
            "when they see the port." % (kver, os.path.join(work, "port0.sock")))
        vm = D.DebianVM("demo", img, work, quiet=True).start()
        prog = D.Progress(vm, lambda m: print("  " + m, flush=True))
        ctl = Guestctl(guestctl, vm.port_path)
        hello = None
        deadline = time.monotonic() + 240
        while hello is None:
            prog.poll()
            if not vm.running():
                raise V.E2EError("QEMU exited during the boot")
            if time.monotonic() > deadline:
                raise V.E2EError("no hello from the guest within 240 s")
            rc, out = ctl.run("watch", "--event", "hello", "--count", "1", "--timeout", "3",
                              timeout=20, echo=False)
            if rc == 0 and out.strip():
                hello = json.loads(out.strip().splitlines()[-1])
        prog.poll()
        say("the agent said hello %.1f s after QEMU started (guestctl attaches, the agent "
            "answers with hello at once):" % vm.elapsed())
        ctl.show("watch", "--event", "hello", "--count", "1")
        print(indent(json.dumps(hello)))

        say("what the guest is:")
        rc, out = ctl.run("call", "system.info")
        print(indent(out))

        say("live metrics: the agent pushes a sample every metrics.interval_ms; "
            "set it to 2 s for the demo, then watch %d samples" % opts.samples)
        rc, out = ctl.run("call", "config.set", "key=metrics.interval_ms", "value=2000")
        print(indent(out))
        ctl.stream("watch", "--table", "--event", "metrics", "--count", str(opts.samples),
                   "--timeout", "30")

        say("exec: a program run in the guest, no shell; here systemd's view of the agent")
        args = ["systemctl", "status", "guestd", "--no-pager", "--lines=3"]
        rc, out = ctl.run("call", "exec", "argv=" + json.dumps(args))
        try:
            res = json.loads(out)
            print("  exit_code %s, %s ms; stdout:" % (res.get("exit_code"), res.get("duration_ms")))
            print(indent(res.get("stdout", "")))
        except ValueError:
            print(indent(out))

        say("shutting the VM down through the agent (power.shutdown: the answer comes "
            "first, then systemctl poweroff)")
        rc, out = ctl.run("call", "power.shutdown")
        print(indent(out))
        t = time.monotonic()
        if vm.wait_exit(90) is None:
            raise V.E2EError("the guest did not power off within 90 s")
        say("the VM powered off %.1f s later" % (time.monotonic() - t))
    except (V.E2EError, subprocess.TimeoutExpired, OSError) as e:
        print("\ndemo: failed: %s" % e, file=sys.stderr)
        if vm:
            vm.dump_logs(40)
        return 1
    finally:
        if vm:
            vm.stop()
        shutil.rmtree(work, ignore_errors=True)
    say("done in %.0f s" % (time.monotonic() - t_all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
