#!/usr/bin/env python3
"""guestd against qemu-ga inside one real VM, over real virtio-serial ports.

Boots the e2e guest (tests/e2e/vm.py, TCG) with guestd on
org.guestd.agent.0 and qemu-ga (from the host's qemu-guest-agent package) on
org.qemu.guest_agent.0, each port backed by its own host unix socket. Then:

  1. idle cost: with both ports present and no host attached, the voluntary
     context switches (all threads) of each agent over IDLE_S seconds, as
     wakeups per minute;
  2. load: the C load client (tests/bench/bench_agents --connect) on the host
     sockets, the order rotating between guestd in its own protocol, guestd
     in qemu-ga's (guestd-qga: the same guest-ping and guest-get-cpustats on
     guestd's port, whose dialect is detected per connection) and qemu-ga,
     for round trips, pipelined throughput and the data command; each
     agent's CPU time per request and RSS read from the guest's /proc.

Prints one table with ratios (guestd / qemu-ga, guestd-qga / qemu-ga). Not a ctest test: it takes a
few minutes and judges nothing; docs/performance.md records its figures.

Environment: GUESTD_BIN (default build/guestd), BENCH_AGENTS (default
build/bench/bench_agents), QEMU_GA (default /usr/sbin/qemu-ga),
BENCH_VM_IDLE_S (default 60), BENCH_VM_ROUNDS (default 3, each runs all three
agents), BENCH_VM_QUICK=1 (small counts, a 10 s idle window).
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vm as V  # noqa: E402
import vm_agents as VA  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
QUICK = os.environ.get("BENCH_VM_QUICK", "") not in ("", "0")
IDLE_S = int(os.environ.get("BENCH_VM_IDLE_S", "10" if QUICK else "60"))
ROUNDS = int(os.environ.get("BENCH_VM_ROUNDS", "1" if QUICK else "3"))
# Under TCG a round trip takes about a millisecond: smaller counts than on
# the host, the same shape.
COUNTS = (["--warmup", "20", "--sequential", "200", "--pipelined", "1000", "--data", "50"]
          if QUICK else
          ["--warmup", "200", "--sequential", "2000", "--pipelined", "20000", "--data", "500"])


def binary(env, default):
    p = os.environ.get(env) or os.path.join(ROOT, default)
    if not os.access(p, os.X_OK):
        sys.exit("bench_vm_agents: %s is not executable (set %s)" % (p, env))
    return p


def cpu_ticks(vm, pid):
    """utime + stime of the whole process, in the guest's clock ticks."""
    stat = vm.sh("cat /proc/%d/stat" % pid)
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def status_kib(vm, pid):
    st = vm.proc_status(pid)
    return {k: int(st[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon") if k in st}


def run_client(client, proto, sock):
    out = subprocess.run([client, "--connect", "%s:%s" % (proto, sock), "--rounds", "1"] + COUNTS,
                         stdout=subprocess.PIPE, check=True, timeout=900)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    gbin = binary("GUESTD_BIN", "build/guestd")
    client = binary("BENCH_AGENTS", "build/bench/bench_agents")
    qga = VA.find_qemu_ga()
    if not qga:
        sys.exit("bench_vm_agents: qemu-ga not found (install qemu-guest-agent or set QEMU_GA)")
    args = ["--channel", "virtio-serial:" + V.PORT_DEV, "-c", "/dev/null",
            "--set", "metrics.log_path=none"]
    requests = sum(int(COUNTS[i + 1]) for i in range(0, len(COUNTS), 2)) + 1  # + the sync
    with VA.AgentsVM("bench", guestd_bin=gbin, guestd_args=args, extra_bins=[qga]) as vm:
        gpid = vm.guestd_pid()
        vm.add_qga_port()
        qpid = vm.start_qga()
        hz = int(vm.sh("getconf CLK_TCK 2>/dev/null || echo 100").strip() or 100)
        V.log("guestd pid %d, qemu-ga pid %d; guest clock ticks %d/s" % (gpid, qpid, hz))

        # 1. Idle, both ports present, no host on either.
        time.sleep(5)  # both settle after start
        g0, q0 = vm.ctxt_switches(gpid), vm.ctxt_switches(qpid)
        V.log("idle: %d s with no host attached" % IDLE_S)
        time.sleep(IDLE_S)
        g1, q1 = vm.ctxt_switches(gpid), vm.ctxt_switches(qpid)
        idle = {"guestd": (g1[2] - g0[2]) * 60.0 / IDLE_S,
                "qemu-ga": (q1[2] - q0[2]) * 60.0 / IDLE_S}
        V.log("idle wakeups/min: guestd %.1f (main thread %d, nonvoluntary %d), "
              "qemu-ga %.1f (main thread %d, nonvoluntary %d)"
              % (idle["guestd"], g1[0] - g0[0], g1[1] - g0[1],
                 idle["qemu-ga"], q1[0] - q0[0], q1[1] - q0[1]))

        # 2. Load, the order rotating each round.
        names = ["guestd", "guestd-qga", "qemu-ga"]
        runs = {n: [] for n in names}
        agents = {"guestd": (gpid, vm.port_path), "guestd-qga": (gpid, vm.port_path),
                  "qemu-ga": (qpid, vm.qga_path)}
        for r in range(ROUNDS):
            order = names[r % 3:] + names[:r % 3]
            for name in order:
                pid, sock = agents[name]
                t0 = cpu_ticks(vm, pid)
                res = run_client(client, name, sock)
                t1 = cpu_ticks(vm, pid)
                res["cpu_us_per_req"] = (t1 - t0) * 1e6 / hz / requests
                runs[name].append(res)
                V.log("round %d %-10s: rt p50 %.0f us p99 %.0f us, pipelined %.0f/s (%d never "
                      "answered), data p50 %.0f us, CPU %.0f us/req"
                      % (r + 1, name, res["rt_p50_us"], res["rt_p99_us"], res["pipelined_per_s"],
                         res.get("lost", 0), res["data_p50_us"], res["cpu_us_per_req"]))
                time.sleep(1)  # the agent notices the detach
        mem = {"guestd": status_kib(vm, gpid), "qemu-ga": status_kib(vm, qpid)}
        kernel = vm.sh("uname -r").strip()

    rows = [
        ("round trip p50 (us)", "rt_p50_us", 0, "<= 0.5x"),
        ("round trip p99 (us)", "rt_p99_us", 0, ""),
        ("pipelined (replies/s)", "pipelined_per_s", 0, ">= 3x"),
        ("data cmd p50 (us)", "data_p50_us", 0, ""),
        ("CPU/request, all phases (us)", "cpu_us_per_req", 0, ""),
    ]
    print("\nguestd vs qemu-ga in one VM (TCG, 1 vCPU, guest kernel %s), virtio-serial ports; "
          "%s; median of %d run(s) each" % (kernel, " ".join(COUNTS), ROUNDS))
    print("%-34s %11s %11s %11s %11s %15s  %s" % ("figure", "guestd", "guestd-qga", "qemu-ga",
                                                  "guestd/qga", "guestd-qga/qga", "target"))

    def ratio(a, b):
        return "%.2fx" % (a / b) if b else "-"

    def line(label, g, gq, q, target):
        gq_text = "%11.1f" % gq if gq is not None else "%11s" % "-"
        print("%-34s %11.1f %s %11.1f %11s %15s  %s"
              % (label, g, gq_text, q, ratio(g, q), ratio(gq, q) if gq is not None else "-",
                 target))
    for label, key, _, target in rows:
        g, gq, q = (median([x[key] for x in runs[n]]) for n in names)
        line(label, g, gq, q, target)
    # Memory and idle cost belong to the process, not to the protocol spoken.
    for k in ("VmRSS", "VmHWM", "RssAnon"):
        line("%s after the runs (KiB)" % k, mem["guestd"].get(k, 0), None,
             mem["qemu-ga"].get(k, 0), "<= 0.5x" if k == "VmRSS" else "")
    line("idle wakeups/min, no host (%d s)" % IDLE_S, idle["guestd"], None, idle["qemu-ga"],
         "<= 0.1x")
    lost = {n: sum(x.get("lost", 0) for x in runs[n]) for n in runs}
    if any(lost.values()):
        print("pipelined requests never answered: %s (of %s per run)"
              % (", ".join("%s %d" % (n, lost[n]) for n in names),
                 COUNTS[COUNTS.index("--pipelined") + 1]))


if __name__ == "__main__":
    main()
