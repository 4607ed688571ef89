#!/usr/bin/env python3
"""The .deb without a VM (issue 7): what CPack makes from the build tree.

  1. the control fields: Depends from dpkg-shlibdeps, the conffile, the
     maintainer scripts (executable, valid sh)
  2. lintian: no errors; the warnings left are the known ones (each has a
     reason below), so a new one fails the test
  3. /etc/guestd/guestd.conf: every key of `guestd --dump-config`,
     commented out, so loading it changes nothing; its hardened profile,
     uncommented, turns off what it says
  4. packaging/install.sh --root lays down exactly the files of
     `dpkg-deb -x` (paths, modes, contents); --uninstall --purge removes
     them all

The Debian guest test (test_debian_service.py) installs the same package
into a real systemd guest. Environment: GUESTD_BUILD_DIR, GUESTD_SOURCE_DIR.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report as R  # noqa: E402
import vm as V  # noqa: E402
import debian_rootfs as D  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packaging"))
import shipped_conf as C  # noqa: E402

SOURCE_DIR = os.environ.get("GUESTD_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("GUESTD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))

# lintian warnings the package keeps, and why.
KNOWN_WARNINGS = {
    # The changelog has one entry and the revision is 1, which lintian reads
    # as a first upload to Debian that should close an ITP bug; this package
    # is not uploaded to Debian.
    "initial-upload-closes-no-bugs",
}


def tree(root):
    """{path: (type, mode, content or link target)} under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
    return out


def main():
    work = tempfile.mkdtemp(prefix="guestd-pkg-")
    try:
        deb = D.build_deb(BUILD_DIR, work)
        guestd = os.path.join(BUILD_DIR, "guestd")
        V.log("package: %s" % deb)

        def control():
            info = D.run(["dpkg-deb", "-I", deb])
            print(info)
            deps = D.deb_depends(deb)
            # Every shared library the agent loads has its package in Depends
            # (libuv and inih are linked statically when their archives exist).
            needed = D.run(["objdump", "-p", guestd])
            wanted = {"libc.so.6": "libc6", "libuv.so.1": "libuv1",
                      "libcjson.so.1": "libcjson1", "libinih.so.1": "libinih1"}
            for soname, lib in wanted.items():
                if "NEEDED               " + soname in needed:
                    assert lib in deps, "Depends lacks %s: %s" % (lib, deps)
            assert "libc6" in deps and "libcjson1" in deps, deps
            assert D.deb_field(deb, "Package") == "guestd"
            assert D.deb_field(deb, "Section") == "admin"
            ctl = os.path.join(work, "control")
            D.run(["dpkg-deb", "-e", deb, ctl])
            with open(os.path.join(ctl, "conffiles")) as f:
                assert f.read().split() == ["/etc/guestd/guestd.conf"]
            for s in ("postinst", "prerm", "postrm"):
                path = os.path.join(ctl, s)
                assert os.stat(path).st_mode & 0o111, "%s is not executable" % s
                D.run(["sh", "-n", path], "sh -n " + s)
            D.run(["sh", "-n", os.path.join(SOURCE_DIR, "packaging", "install.sh")])
        R.check("control: Depends (shlibdeps), conffiles, maintainer scripts", control)

        def lintian():
            res = subprocess.run(["lintian", "--pedantic", "--tag-display-limit", "0", deb],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = res.stdout.decode(errors="replace")
            print(out)
            tags = re.findall(r"^([EWIPX]): guestd[^:]*: (\S+)", out, re.M)
            errors = sorted({t for k, t in tags if k == "E"})
            warnings = sorted({t for k, t in tags if k == "W"})
            V.log("FIGURE lintian: %d errors, warnings: %s" % (len(errors), warnings or "none"))
            assert not errors, "lintian errors: %s" % errors
            new = sorted(set(warnings) - KNOWN_WARNINGS)
            assert not new, "new lintian warnings (fix, or add with a reason): %s" % new
        R.check("lintian: no errors, only the known warnings", lintian)

        def conf():
            x = os.path.join(work, "x")
            D.run(["dpkg-deb", "-x", deb, x])
            path = os.path.join(x, "etc/guestd/guestd.conf")
            text, _ = C.check_all_commented(guestd, path, 20)
            hard = text.replace("\n;[commands]\n", "\n[commands]\n")
            hard = re.sub(r"(?m)^;(deny = exec.*)$", r"\1", hard)
            hpath = os.path.join(work, "hardened.conf")
            with open(hpath, "w") as f:
                f.write(hard)
            out = D.run([guestd, "-c", hpath, "--dump-config"])
            m = re.search(r"^deny = (.*)$", out, re.M)
            assert m and "exec*" in m.group(1) and "file.write" in m.group(1), out
        R.check("guestd.conf: every key commented at its default; the hardened profile loads", conf)

        def install_sh():
            x = os.path.join(work, "dpkg-x")
            D.run(["dpkg-deb", "-x", deb, x])
            r = os.path.join(work, "root")
            os.mkdir(r)
            sh = os.path.join(SOURCE_DIR, "packaging", "install.sh")
            print(D.run(["sh", sh, "--root", r, deb]))
            a, b = tree(r), tree(x)
            assert a.keys() == b.keys(), "install.sh: %s; dpkg-deb -x: %s" \
                % (sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys()))
            diff = [p for p in a if a[p] != b[p]]
            assert not diff, "differ in mode or content: %s" % diff
            with open(os.path.join(r, "etc/guestd/guestd.conf"), "a") as f:
                f.write("; changed\n")
            out = D.run(["sh", sh, "--root", r, deb])
            assert "kept your /etc/guestd/guestd.conf" in out, out
            assert os.path.exists(os.path.join(r, "etc/guestd/guestd.conf.new"))
            D.run(["sh", sh, "--root", r, "--uninstall", deb])
            left = sorted(tree(r))
            assert left == ["/etc", "/etc/guestd", "/etc/guestd/guestd.conf",
                            "/etc/guestd/guestd.conf.new"], "after --uninstall: %s" % left
            D.run(["sh", sh, "--root", r, "--uninstall", "--purge", deb])
            left = sorted(tree(r))
            assert left == [], "after --uninstall --purge: %s" % left
        R.check("install.sh --root: the files of dpkg-deb -x; --uninstall --purge: none", install_sh)
    except Exception as e:
        R.fail("package", "error: %s" % e)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    return R.summary("test_package")

if __name__ == "__main__":
    sys.exit(main())
