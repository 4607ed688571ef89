#!/usr/bin/env python3
"""A hostile guest user against the real agent (docs/security.md: guest
users are not trusted). The suite creates a real unprivileged user (useradd,
home in a temporary directory, removed with userdel at the end), sets up each
attack as that user (a forked child that has dropped to the user's uid and
gid), and sends qemu-ga's guest-ssh-get/add/remove-authorized-keys to an
agent started by host.py, as a host would:

- ~/.ssh a symbolic link to a directory of root's (a cron directory),
- authorized_keys a symbolic link to, or a hard link of, a file of root's,
- authorized_keys a FIFO (other commands must still be answered at once),
  a sparse 1 GiB file, an empty file, a file without a final newline,
- a process named with terminal escapes, then guestctl log summary/export
  on the agent's metrics log: no raw ESC byte may reach the output.

Each attack is refused with a clear error or is harmless; root's directory
keeps exactly its files, byte for byte. Needs root (useradd); skipped
otherwise."""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import MEMORY_TOOL, Agent, scaled  # noqa: E402
from test_qga import Qga  # noqa: E402

GUESTCTL = os.path.join(os.environ.get("GUESTD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build")),
                        "guestctl")
EVIL_NAME = b"\x1b]0;pwned\x07\x1b[2J"  # retitles the terminal, clears it
EVIL_SHOWN = b"\\x1b]0;pwned\\x07\\x1b[2J"
ROOT_JOB = b"* * * * * root /bin/true\n"
CAN_RUN = os.geteuid() == 0 and shutil.which("useradd") and shutil.which("userdel")


class User:
    """A real unprivileged user whose home is home (made, owned by them)."""

    def __init__(self, base):
        self.name = "gdhost%d" % os.getpid()
        self.home = os.path.join(base, "home")
        subprocess.run(["userdel", self.name], stderr=subprocess.DEVNULL)  # a leftover of a killed run
        subprocess.run(["useradd", "--no-create-home", "--home-dir", self.home, "--shell", "/bin/false",
                        "--user-group", self.name], check=True)
        import pwd
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.mkdir(self.home, 0o755)
        os.chown(self.home, self.uid, self.gid)
        self.ssh = os.path.join(self.home, ".ssh")
        self.keys = os.path.join(self.ssh, "authorized_keys")

    def remove(self):
        subprocess.run(["userdel", self.name], stderr=subprocess.DEVNULL)
        subprocess.run(["groupdel", self.name], stderr=subprocess.DEVNULL)

    def do(self, fn):
        """Runs fn() as the user in a forked child; raises when it failed."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
                fn()
                os.write(w, b"ok")
            except BaseException as e:  # noqa: B902 - reported to the parent
                os.write(w, repr(e).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read()
        os.waitpid(pid, 0)
        if out != b"ok":
            raise RuntimeError("as %s: %s" % (self.name, out.decode(errors="replace")))

    def start(self, fn):
        """Starts fn() as the user in a child left running; its pid."""
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
                fn()
            finally:
                os._exit(0)
        return pid


def read(path):
    with open(path, "rb") as f:
        return f.read()


def tree(path):
    """Every file under path with its bytes, owner and mode: what must not change."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            data = read(p) if os.path.isfile(p) and not os.path.islink(p) else None
            out[os.path.relpath(p, path)] = (st.st_uid, st.st_mode, st.st_nlink, data)
    return out


@unittest.skipUnless(CAN_RUN, "needs root and useradd/userdel")
class HostileUser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="guestd-hostile-")
        os.chmod(cls.base, 0o755)
        # A directory and a file of root's that a user would love to write.
        cls.rootdir = os.path.join(cls.base, "cron.d")
        os.mkdir(cls.rootdir, 0o755)
        cls.job = os.path.join(cls.rootdir, "job")
        with open(cls.job, "wb") as f:
            f.write(ROOT_JOB)
        cls.user = None
        try:
            cls.user = User(cls.base)
            cls.agent = Agent("--set", "channel.dialect=qemu-ga")
        except BaseException:
            cls.cleanup()
            raise
        cls.before = tree(cls.rootdir)

    @classmethod
    def cleanup(cls):
        if cls.user:
            cls.user.remove()
        shutil.rmtree(cls.base, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.agent.stop()
        finally:
            cls.cleanup()

    def setUp(self):
        self.q = Qga(self.agent.sock)
        u = self.user
        # A clean slate: no ~/.ssh.
        if os.path.islink(u.ssh) or os.path.isfile(u.ssh):
            os.unlink(u.ssh)
        elif os.path.isdir(u.ssh):
            shutil.rmtree(u.ssh)

    def tearDown(self):
        self.q.close()
        self.assertEqual(tree(self.rootdir), self.before, "root's directory changed")

    def ssh(self, cmd, keys=None, reset=None):
        args = {"username": self.user.name}
        if keys is not None:
            args["keys"] = keys
        if reset is not None:
            args["reset"] = reset
        return self.q.call("guest-ssh-%s-authorized-keys" % cmd, args)

    def refused(self, reply, words):
        self.assertIn("error", reply, reply)
        self.assertEqual(reply["error"]["class"], "GenericError", reply)
        self.assertIn(words, reply["error"]["desc"], reply)

    def all_refused(self, words):
        for cmd, keys in [("get", None), ("add", ["ssh-ed25519 AAAA new"]), ("remove", ["k"])]:
            self.refused(self.ssh(cmd, keys), words)
        self.refused(self.ssh("add", ["ssh-ed25519 AAAA new"], reset=True), words)

    def make_ssh_dir(self):
        self.user.do(lambda: os.mkdir(self.user.ssh, 0o700))

    def test_ssh_dir_linked_to_roots_directory(self):
        u = self.user
        u.do(lambda: os.symlink(self.rootdir, u.ssh))
        self.all_refused("a symbolic link or not a directory")
        self.assertEqual(os.readlink(u.ssh), self.rootdir)

    def test_ssh_dir_of_another_owner(self):
        os.mkdir(self.user.ssh, 0o755)  # root's, in the user's home
        self.all_refused("is not owned by the user")
        self.assertEqual(os.listdir(self.user.ssh), [])

    def test_keys_linked_to_roots_file(self):
        u = self.user
        self.make_ssh_dir()
        u.do(lambda: os.symlink(self.job, u.keys))
        for cmd, keys in [("get", None), ("add", ["ssh-ed25519 AAAA new"]), ("remove", ["k"])]:
            self.refused(self.ssh(cmd, keys), "a symbolic link")
        # Not replaced by a file of the new key alone: left as it was.
        self.assertEqual(os.readlink(u.keys), self.job)
        # reset replaces the link itself (never its target) with the user's file.
        self.assertIn("return", self.ssh("add", ["ssh-ed25519 AAAA new"], reset=True))
        st = os.lstat(u.keys)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (u.uid, 0o600))
        self.assertEqual(read(u.keys), b"ssh-ed25519 AAAA new\n")

    def test_keys_hard_link_of_roots_file(self):
        u = self.user
        self.make_ssh_dir()
        try:
            u.do(lambda: os.link(self.job, u.keys))
        except RuntimeError:
            # fs.protected_hardlinks=1 (this kernel) stops the user; a guest
            # without it would not: the link is made as root instead.
            os.link(self.job, u.keys)
        self.before = tree(self.rootdir)  # the link count is now 2
        for cmd, keys in [("get", None), ("add", ["ssh-ed25519 AAAA new"]), ("remove", ["k"])]:
            self.refused(self.ssh(cmd, keys), "not owned by the user")
        self.assertTrue(os.path.samefile(u.keys, self.job))
        os.unlink(u.keys)
        self.before = tree(self.rootdir)

    def test_fifo_is_refused_while_other_commands_answer(self):
        u = self.user
        self.make_ssh_dir()
        u.do(lambda: os.mkfifo(u.keys, 0o600))
        # More FIFO requests than the thread pool has threads (4), pipelined,
        # then a ping and a file read: everything answers at once. Six, so
        # that with the file open they stay within commands.max_concurrent
        # (8), which the qemu-ga file and ssh commands count against.
        reqs = []
        for i in range(6):
            reqs.append({"execute": "guest-ssh-%s-authorized-keys" % ("get", "add", "remove")[i % 3],
                         "arguments": {"username": u.name, **({"keys": ["k"]} if i % 3 else {})},
                         "id": i})
        probe = os.path.join(self.base, "probe.txt")
        with open(probe, "w") as f:
            f.write("probe")
        reqs.append({"execute": "guest-ping", "id": "ping"})
        reqs.append({"execute": "guest-file-open", "arguments": {"path": probe}, "id": "open"})
        t0 = time.monotonic()
        self.q.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
        replies = {}
        while len(replies) < len(reqs):
            r, _ = self.q.read(timeout=scaled(3))
            replies[r["id"]] = r
        self.assertIn("return", replies["ping"])
        handle = replies["open"]["return"]
        got = self.q.call("guest-file-read", {"handle": handle})
        self.assertEqual(got["return"]["buf-b64"], "cHJvYmU=")
        self.q.call("guest-file-close", {"handle": handle})
        self.assertLess(time.monotonic() - t0, scaled(3))
        for i in range(6):
            self.refused(replies[i], "not a regular file")
        self.assertTrue(os.path.exists(u.keys) and not os.path.isfile(u.keys))

    def test_sparse_gigabyte_is_refused_unread(self):
        u = self.user

        def big():
            os.mkdir(u.ssh, 0o700)
            with open(u.keys, "wb") as f:
                f.truncate(1 << 30)
        u.do(big)
        t0 = time.monotonic()
        for cmd, keys in [("get", None), ("add", ["ssh-ed25519 AAAA new"]), ("remove", ["k"])]:
            self.refused(self.ssh(cmd, keys), "larger than 1 MiB")
        self.assertLess(time.monotonic() - t0, scaled(2))
        self.assertEqual(os.stat(u.keys).st_size, 1 << 30)
        if not MEMORY_TOOL:
            self.assertLess(self.agent.status("VmHWM"), 200 * 1024, "the agent read the file")

    def test_empty_file_and_no_final_newline(self):
        u = self.user
        self.make_ssh_dir()
        u.do(lambda: open(u.keys, "wb").close())
        self.assertEqual(self.ssh("get"), {"return": {"keys": []}})
        self.assertIn("return", self.ssh("add", ["ssh-ed25519 AAAA one"]))
        self.assertEqual(read(u.keys), b"ssh-ed25519 AAAA one\n")

        def no_newline():
            with open(u.keys, "wb") as f:
                f.write(b"ssh-ed25519 AAAA zero")
        os.unlink(u.keys)
        u.do(no_newline)
        self.assertEqual(self.ssh("get"), {"return": {"keys": ["ssh-ed25519 AAAA zero"]}})
        self.assertIn("return", self.ssh("add", ["ssh-ed25519 AAAA one"]))
        self.assertEqual(read(u.keys), b"ssh-ed25519 AAAA zero\nssh-ed25519 AAAA one\n")
        self.assertIn("return", self.ssh("remove", ["ssh-ed25519 AAAA zero"]))
        self.assertEqual(read(u.keys), b"ssh-ed25519 AAAA one\n")
        st = os.lstat(u.keys)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (u.uid, u.gid, 0o600))

    def test_missing_ssh_dir_is_made_the_users(self):
        u = self.user
        self.refused(self.ssh("get"), "No such file or directory")
        self.assertEqual(self.ssh("remove", ["k"]), {"return": {}})
        self.assertIn("return", self.ssh("add", ["ssh-ed25519 AAAA one"]))
        st = os.lstat(u.ssh)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (u.uid, u.gid, 0o700))
        self.assertEqual(sorted(os.listdir(u.ssh)), ["authorized_keys"])  # no temporary file left
        self.assertEqual(self.ssh("get"), {"return": {"keys": ["ssh-ed25519 AAAA one"]}})


def spin_named(name):
    """As the user: names this process (prctl PR_SET_NAME) and keeps a CPU busy."""
    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
        end = time.monotonic() + 120
        while time.monotonic() < end:
            pass
    return run


@unittest.skipUnless(CAN_RUN, "needs root and useradd/userdel")
class EscapesInProcessNames(unittest.TestCase):
    """A process name with terminal escapes reaches the metrics log (JSON-
    escaped) and from there guestctl's table and CSV: escaped there too."""

    def test_guestctl_prints_no_raw_escape(self):
        base = tempfile.mkdtemp(prefix="guestd-hostile-")
        os.chmod(base, 0o755)
        user = spinner = None
        try:
            user = User(base)
            spinner = user.start(spin_named(EVIL_NAME))
            log = os.path.join(base, "metrics.ndjson")
            with Agent("--set", "metrics.log_path=" + log, "--set", "metrics.interval_ms=200",
                       "--set", "metrics.top_processes=100"):
                deadline = time.time() + scaled(15)
                while not (os.path.exists(log) and b"pwned" in read(log)):
                    self.assertLess(time.time(), deadline, "the process never reached the log")
                    time.sleep(0.1)
            self.assertNotIn(b"\x1b", read(log))  # the agent's JSON escapes it
            runs = [["log", "summary", log], ["log", "export", "--csv", log], ["log", "show", log]]
            for args in runs:
                p = subprocess.run([GUESTCTL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=30)
                self.assertEqual(p.returncode, 0, (args, p.stderr))
                self.assertNotIn(b"\x1b", p.stdout, args)
                self.assertNotIn(b"\x07", p.stdout, args)
                self.assertNotIn(b"\x1b", p.stderr, args)
                if args[1] == "show":
                    self.assertIn(b"\\u001b]0;pwned\\u0007\\u001b[2J", p.stdout)
                else:
                    self.assertIn(b"processes.top." + EVIL_SHOWN + b".cpu_pct", p.stdout, args)
            field = "processes.top." + EVIL_NAME.decode() + ".cpu_pct"
            p = subprocess.run([GUESTCTL, "log", "show", "--field", field, log],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b" processes.top." + EVIL_SHOWN + b".cpu_pct=", p.stdout)
            self.assertNotIn(b"\x1b", p.stdout)
        finally:
            if spinner:
                os.kill(spinner, signal.SIGKILL)
                os.waitpid(spinner, 0)
            if user:
                user.remove()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
