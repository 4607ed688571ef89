#!/usr/bin/env bash
# guestd against QEMU's guest agent on the same machine, in one run: builds
# guestd and the load client if needed, then runs tests/bench/bench_agents,
# which starts both agents on unix-listen sockets in a temporary directory
#   guestd  --channel unix-listen:SOCK -c /dev/null --set metrics.log_path=none
#   qemu-ga -m unix-listen -p SOCK -t STATEDIR -f STATEDIR/qemu-ga.pid
# rotates runs between them (guestd in its own protocol, guestd in qemu-ga's,
# qemu-ga) and prints one table with the ratios.
# Usage: tests/bench/run-agents.sh [bench_agents options, e.g. --rounds 9 or --quick]
# Environment: BUILD_DIR (default build), QEMU_GA (default /usr/sbin/qemu-ga).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
if [ ! -x "$build/guestd" ] || [ ! -x "$build/bench/bench_agents" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc)" --target guestd bench_agents >/dev/null
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
os=$(. /etc/os-release && echo "$PRETTY_NAME")
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
echo "machine: $(nproc) x $cpu, $mem, $os, kernel $(uname -r)"
echo "guestd:  $("$build/guestd" --version) ($(git describe --always --dirty 2>/dev/null || echo '?'))"
qga=${QEMU_GA:-/usr/sbin/qemu-ga}
if [ -x "$qga" ]; then
  echo "qemu-ga: $("$qga" --version | head -1)"
fi
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
exec "$build/bench/bench_agents" --guestd "$build/guestd" "$@"
