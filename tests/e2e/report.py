"""The record every e2e suite keeps: the checks it ran, the figures it
measured, and the summary it ends with. Each suite is one process, so the
record is this module's state.

    import report as R
    R.check("hello arrives", fn, log=vm.agent_log_text)
    R.figure("boot to hello", "%.1f s" % t)
    return R.summary("test_vm_channel")

The summary ends in "N passed, N failed" alone on a line, and its exit
status is 0 only when at least one check ran and none failed.
"""

import os
import sys
import time
import traceback

import vm as V

results = []     # (name, ok, message)
figures = []     # (name, value text)
_t0 = time.monotonic()


def figure(name, text):
    figures.append((name, text))
    V.log("FIGURE %s: %s" % (name, text))


def fail(name, msg):
    """Records a failure found outside a check (the VM would not boot)."""
    results.append((name, False, msg))
    V.log("FAIL %s: %s" % (name, msg))


def any_failed():
    return any(not ok for _, ok, _ in results)


def check(name, fn, log=None, log_name="agent log", tail=40):
    """Runs fn() as one check and records its outcome: an exception of any
    kind fails it. log, when given, returns the text logged so far (the
    agent's log, the guest's journal); on failure the lines logged while the
    check ran are printed, the last `tail` of them. True when it passed."""
    V.log("--- %s" % name)
    start = len(log()) if log else 0
    try:
        fn()
    except Exception as e:   # AssertionError, E2EError, anything
        fail(name, str(e) or e.__class__.__name__)
        if not isinstance(e, (AssertionError, V.E2EError)):
            traceback.print_exc()
        if log:
            rows = log()[start:].replace("\r", "").splitlines()
            print("  %s during this check (%d lines%s):"
                  % (log_name, len(rows), ", last %d" % tail if len(rows) > tail else ""))
            for r in rows[-tail:]:
                print("  | " + r)
        sys.stdout.flush()
        return False
    results.append((name, True, ""))
    V.log("PASS %s" % name)
    return True


def guestd_bin():
    """The agent under test: GUESTD_BIN, else guestd in GUESTD_BUILD_DIR or
    in the source tree's build/; None when there is none."""
    b = os.environ.get("GUESTD_BIN")
    if b:
        return b
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.environ.get("GUESTD_BUILD_DIR"),
              os.path.join(os.environ.get("GUESTD_SOURCE_DIR", os.path.dirname(os.path.dirname(here))),
                           "build")):
        if d and os.path.exists(os.path.join(d, "guestd")):
            return os.path.join(d, "guestd")
    return None


def summary(suite):
    """Prints the figures and every check's outcome; the exit status."""
    print("\n===== %s summary (%.0f s) =====" % (suite, time.monotonic() - _t0))
    for name, text in figures:
        print("  %-55s %s" % (name + ":", text))
    failed = [r for r in results if not r[1]]
    for name, ok, msg in results:
        print("  %s  %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + msg))
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    sys.stdout.flush()
    return 1 if failed or not results else 0


def check_in_vm(vm, name, fn):
    """check() with the agent log of a vm.py VM (vm may be None); a failure
    marks the VM failed, so its logs are kept."""
    ok = check(name, fn, log=vm.agent_log_text if vm else None)
    if not ok and vm:
        vm.failed = True
    return ok


def check_agent_exit(vm):
    """The last check of a VM: the agent stops on SIGTERM with status 0 and
    logs no sanitizer report on the way out (a leak at exit, under ASan,
    makes the status non-zero and prints one)."""
    def clean_exit():
        status, text = vm.stop_agent()
        found = [line for line in text.splitlines() if V.SANITIZER_REPORT.search(line)]
        assert not found, "sanitizer report at exit: %s" % found[:5]
        assert status == 0, "agent exited with status %d after SIGTERM" % status
    return check_in_vm(vm, "agent exits with status 0 on SIGTERM, no sanitizer report",
                       clean_exit)


def run_parts(suite, parts):
    """The main() of a suite made of parts, each part(gbin) booting its own
    VM and running its checks: a part that raises is one failure and the
    next part still runs. The exit status."""
    gbin = guestd_bin()
    V.log("guestd under test: %s" % gbin)
    if not gbin or not os.access(gbin, os.X_OK):
        print("FAIL: no guestd binary (set GUESTD_BIN)")
        return 1
    for part in parts:
        try:
            part(gbin)
        except Exception as e:
            fail(part.__name__, "VM error: %s" % e)
            if not isinstance(e, V.E2EError):
                traceback.print_exc()
    return summary(suite)
