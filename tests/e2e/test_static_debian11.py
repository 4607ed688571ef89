#!/usr/bin/env python3
"""The static guestd on Debian 11 (issue 19): a guest the .deb cannot serve.

Debian 11 (bullseye: glibc 2.31, systemd 247) is debootstrapped like the
Debian 12 guest of test_debian_service.py (debian_rootfs.py, cached per
suite), and checked in a chroot of a copy of it, then booted under QEMU TCG:

  1. the Debian 12 .deb (cpack, from GUESTD_BUILD_DIR) is refused: dpkg -i
     in the chroot fails on its dependencies, naming libc6 and libcjson1;
     dpkg --purge leaves nothing of it
  2. the release tarball of packaging/static.sh (GUESTD_STATIC_DIR, default
     build-static/) installs with its install.sh --root: the systemd flavour
     (guestd.service, 60-guestd.rules), as the .deb lays it down
  3. the guest boots with the port org.guestd.agent.0: udev and systemd
     start the agent (hello, the unit active and wanted by the port's device)
  4. ping, system.info (Debian 11), metrics.get, and exec of a command in
     the guest (glibc 2.31, systemd 247 seen from inside; ldd calls the
     agent not dynamic)

Without the tarball it exits 77 (skipped), unless GUESTD_VM_STATIC_REQUIRED=1
(packaging/dev.sh test). Environment: GUESTD_BUILD_DIR, GUESTD_SOURCE_DIR,
GUESTD_STATIC_DIR, GUESTD_E2E_KEEP=1, and those of vm.py and debian_rootfs.py.
Exit status 0 when every check passed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report as R  # noqa: E402
import vm as V  # noqa: E402
import debian_rootfs as D  # noqa: E402
from test_debian_service import Guest, DEVICE_UNIT  # noqa: E402

SOURCE_DIR = os.environ.get("GUESTD_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("GUESTD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
STATIC_DIR = os.environ.get("GUESTD_STATIC_DIR", os.path.join(SOURCE_DIR, "build-static"))
SUITE = "bullseye"
BOOT_TIMEOUT = 240       # QEMU start to the first hello


def check(name, fn, vm=None):
    return R.check(name, fn, log=vm.journal_text if vm else None,
                   log_name="guest journal", tail=50)


def tarball():
    found = sorted(glob.glob(os.path.join(STATIC_DIR, "guestd-*-x86_64-linux.tar.gz")),
                   key=os.path.getmtime)
    return found[-1] if found else None


def main():
    if os.geteuid() != 0:
        print("FAIL: the Debian 11 guest test needs root (debootstrap, chroot)")
        return 1
    tgz = tarball()
    if not tgz:
        msg = "no release tarball in %s (packaging/static.sh makes it)" % STATIC_DIR
        if os.environ.get("GUESTD_VM_STATIC_REQUIRED", "") not in ("", "0"):
            print("FAIL: " + msg)
            return 1
        print("SKIP: " + msg)
        return 77
    work = tempfile.mkdtemp(prefix="guestd-d11-")
    keep = os.environ.get("GUESTD_E2E_KEEP", "") not in ("", "0")
    vm = None
    try:
        t0 = time.monotonic()
        deb = D.build_deb(BUILD_DIR, work)
        R.figure("the .deb", "%s, Depends: %s" % (os.path.basename(deb), D.deb_field(deb, "Depends")))
        with tarfile.open(tgz) as t:
            t.extractall(work)
        top = os.path.join(work, os.path.basename(tgz)[:-len(".tar.gz")])
        with open(os.path.join(top, "VERSION")) as f:
            version = f.read().strip()
        R.figure("the tarball", "%s, %d bytes" % (os.path.basename(tgz), os.path.getsize(tgz)))
        st = {}

        def prepare(root):
            # 1. The .deb: unpacked, then left unconfigured on its dependencies.
            shutil.copy2(deb, os.path.join(root, "tmp", "guestd.deb"))
            res = subprocess.run(["chroot", root, "dpkg", "-i", "/tmp/guestd.deb"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = res.stdout.decode(errors="replace")
            os.unlink(os.path.join(root, "tmp", "guestd.deb"))
            st["dpkg"] = (res.returncode, out)
            V.log("dpkg -i of the Debian 12 .deb on Debian 11 said (status %d):\n%s"
                  % (res.returncode, out))
            D.run(["chroot", root, "dpkg", "--purge", "guestd"], "dpkg --purge guestd")
            st["after_purge"] = [p for p in ("usr/sbin/guestd", "lib/systemd/system/guestd.service",
                                             "etc/guestd/guestd.conf")
                                 if os.path.lexists(os.path.join(root, p))]
            # 2. The tarball's installer on the image, as a guest's admin would.
            out = D.run(["sh", os.path.join(top, "install.sh"), "--root", root],
                        "install.sh --root")
            V.log("install.sh --root said:\n" + out)
            st["installed"] = {p: os.path.exists(os.path.join(root, p))
                               for p in ("usr/sbin/guestd", "lib/systemd/system/guestd.service",
                                         "lib/udev/rules.d/60-guestd.rules",
                                         "etc/guestd/guestd.conf")}
            return out

        def image():
            img, kver, out = D.make_image(work, None, suite=SUITE, packages=(),
                                          prepare=prepare)
            st["img"] = img
            st["install_out"] = out
        if not check("image: Debian 11 (debootstrap %s, cached) with the checks below" % SUITE,
                     image):
            return 1
        R.figure("image ready (cpack, rootfs, dpkg, install.sh, mkfs)",
                 "%.0f s" % (time.monotonic() - t0))

        def deb_refused():
            rc, out = st["dpkg"]
            assert rc != 0, "dpkg -i of the Debian 12 .deb succeeded on Debian 11: %s" % out
            assert "dependency problems" in out, out
            assert re.search(r"guestd depends on libc6 \(>= 2\.3[2-9]\)", out), \
                "no libc6 dependency error: %s" % out
            assert re.search(r"libc6:amd64 on system is 2\.31", out), out
            assert re.search(r"guestd depends on libcjson1", out), \
                "no libcjson1 dependency error: %s" % out
            assert not st["after_purge"], "dpkg --purge left %s" % st["after_purge"]
        check("the Debian 12 .deb is refused on Debian 11 (libc6 2.31, no libcjson1)", deb_refused)

        def tar_installed():
            missing = [p for p, ok in st["installed"].items() if not ok]
            assert not missing, "install.sh --root did not install %s" % missing
            assert "systemd" in st["install_out"], st["install_out"]
        check("install.sh --root from the tarball: the systemd flavour", tar_installed)

        vm = D.DebianVM("debian11", st["img"], work)
        vm.start()
        prog = D.Progress(vm, lambda m: V.log("boot: " + m))
        g = Guest(vm)

        def first_hello():
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                prog.poll()
                try:
                    m = g.new_hello(2)
                    break
                except V.E2EError:
                    if time.monotonic() > deadline or not vm.running():
                        raise V.E2EError("no hello within %d s of starting QEMU" % BOOT_TIMEOUT)
            R.figure("QEMU start to hello (TCG)", "%.1f s" % vm.elapsed())
            d = m["data"]
            assert d.get("agent") == "guestd", d
            assert d.get("version") == version, "hello version %r, tarball %r" % (d.get("version"), version)
            deadline = time.monotonic() + 30
            while True:   # the hello may come before READY=1
                props = g.show("guestd.service", "ActiveState", "WantedBy", "BindsTo")
                if props.get("ActiveState") != "activating" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            V.log("guestd.service: %s" % props)
            assert props.get("ActiveState") == "active", props
            assert ".device" in props.get("WantedBy", ""), props
            assert DEVICE_UNIT in props.get("BindsTo", "").replace("\\\\", "\\"), props
        if not check("hello: udev and systemd 247 started the static agent because the port exists",
                     first_hello, vm):
            return 1

        def commands():
            t = time.monotonic()
            g.ok("ping")
            R.figure("ping round trip (TCG)", "%.1f ms" % ((time.monotonic() - t) * 1000))
            info = g.ok("system.info")
            os_ = info.get("os", {})
            assert os_.get("id") == "debian" and os_.get("version_id") == "11", os_
            m = g.ok("metrics.get")
            assert m.get("memory", {}).get("total_bytes", 0) > 0, "metrics.get: %s" % V.short(m, 400)
            mounts = [f.get("mount") for f in m.get("filesystems", [])]
            assert "/" in mounts, "filesystems: %s" % mounts
            out = g.sh_ok("cat /etc/debian_version; ldd --version | head -1; "
                          "systemctl --version | head -1; ldd /usr/sbin/guestd 2>&1 || true")
            V.log("exec in the guest: %s" % out)
            assert re.search(r"^11\.", out, re.M), out
            assert "2.31" in out, out
            assert re.search(r"^systemd 247", out, re.M), out
            assert "not a dynamic executable" in out, out
            # What systemd 247 made of the unit written for 252: directives
            # it does not know are ignored with a warning (recorded, so a
            # reader sees which hardening a Debian 11 guest does without).
            out = g.sh_ok("journalctl -b --no-pager -o cat | grep 'guestd.service:' | "
                          "grep -i -E 'unknown|ignor|invalid' | sort -u || true")
            R.figure("systemd 247 on guestd.service", out.strip().replace("\n", " | ")
                     or "no warning")
        check("ping, system.info (Debian 11), metrics.get, exec (glibc 2.31, systemd 247, "
              "the agent not dynamic)", commands, vm)
    except Exception as e:
        R.fail("VM", "error: %s" % e)
        if not isinstance(e, V.E2EError):
            traceback.print_exc()
    finally:
        failed = R.any_failed()
        if vm:
            if failed:
                vm.dump_logs()
            vm.stop()
        if failed or keep:
            for f in os.listdir(work):
                if f.endswith((".img", ".deb")) and not keep:
                    os.unlink(os.path.join(work, f))
            V.log("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return R.summary("test_static_debian11")


if __name__ == "__main__":
    sys.exit(main())
