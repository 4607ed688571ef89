#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang into their
# own build directory and runs each one: first its regression inputs
# (tests/fuzz/regressions/<name>/, every crash found so far, which must pass),
# then fuzzing for N seconds from its seed corpus (tests/fuzz/corpus/<name>/).
#
#   tests/fuzz/run.sh                     # every harness, 10 s each
#   tests/fuzz/run.sh --seconds 1800 -j 2 # a long run, two at a time
#   tests/fuzz/run.sh --only framer --seconds 60
#   tests/fuzz/run.sh --build-only | --replay-only | --no-build
#
# Exit status: 0 when every harness ran clean; 1 when one crashed, hung,
# leaked or broke an invariant (the input is saved under
# BUILD/artifacts/<name>/ and the line to reproduce it is printed); 2 for a
# usage or build error; 77 when --only names harnesses none of which is
# built (a harness whose module is not written yet). New corpus entries stay
# in BUILD/corpus/<name>/ (not in the repository: copy the few worth keeping
# into tests/fuzz/corpus/). BUILD is build-fuzz/ unless --build-dir says.
# GUESTD_FUZZ_SECONDS sets the default time; in CI the seed is fixed (1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${GUESTD_FUZZ_SECONDS:-10}
build="$root/build-fuzz"
jobs=1
only=""
mode=all
seed=""
build_step=1

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -j|--jobs) jobs=$2; shift 2 ;;
    --only) only="$only ${2#fuzz_}"; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --build-only) mode=build; shift ;;
    --replay-only) mode=replay; shift ;;
    --no-build) build_step=0; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
# In CI the same seed every time: a run that fails, fails again.
if [ -z "$seed" ] && [ -n "${CI:-}" ] && [ "${CI:-}" != false ]; then seed=1; fi

cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 || ! "$cc" --version 2>/dev/null | grep -qi clang; then
  echo "run.sh: the harnesses need clang (CC=$cc); packaging/install-deps.sh installs it" >&2
  exit 2
fi

if [ $build_step = 1 ]; then
  echo "== fuzz: building into $build"
  mkdir -p "$build"
  if ! CC=$cc cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      >"$build/configure.log" 2>&1; then
    cat "$build/configure.log" >&2
    exit 2
  fi
  grep -h "fuzz_.*skipped" "$build/configure.log" || true
  if ! cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >"$build/build.log" 2>&1; then
    grep -E "error|Error" "$build/build.log" >&2 || cat "$build/build.log" >&2
    exit 2
  fi
fi
[ "$mode" = build ] && exit 0

harnesses=()
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  if [ -n "$only" ] && ! grep -qw -- "$name" <<<"$only"; then continue; fi
  harnesses+=("$name")
done
if [ ${#harnesses[@]} -eq 0 ]; then
  echo "run.sh: no harness to run${only:+ (--only$only: not built)}" >&2
  [ -n "$only" ] && exit 77
  exit 2
fi

# One harness: regressions, then fuzzing. Writes a summary line to its log.
run_one() {
  local name=$1 bin="$build/fuzz_$1" log="$build/logs/$1.log"
  local art="$build/artifacts/$1/" work="$build/corpus/$1"
  mkdir -p "$art" "$work" "$build/logs"
  local opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$art")
  [ -f "$here/$1.dict" ] && opts+=(-dict="$here/$1.dict")
  : >"$log"
  local reg="$here/regressions/$1"
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    if ! "$bin" "${opts[@]}" "$reg"/* >>"$log" 2>&1; then
      echo "FAIL $1: a regression input fails again: $(grep -a -m1 -E 'ERROR|invariant broken' "$log" | cut -c1-200)"
      echo "     log: $log"
      return 1
    fi
  fi
  [ "$mode" = replay ] && { echo "ok   $1: regressions pass"; return 0; }
  local seeds=()
  [ -d "$here/corpus/$1" ] && seeds=("$here/corpus/$1")
  local extra=()
  [ -n "$seed" ] && extra=(-seed="$seed")
  if ! "$bin" "${opts[@]}" "${extra[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      "$work" "${seeds[@]}" >>"$log" 2>&1; then
    echo "FAIL $1: $(grep -a -m1 -E 'ERROR|invariant broken|SUMMARY' "$log" | cut -c1-200)"
    local crash
    crash=$(grep -a -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
    [ -n "$crash" ] && echo "     reproduce: $bin $crash"
    echo "     log: $log"
    return 1
  fi
  local runs execs cov
  runs=$(grep -a "stat::number_of_executed_units" "$log" | awk '{print $2}')
  execs=$(grep -a "stat::average_exec_per_sec" "$log" | awk '{print $2}')
  cov=$(grep -a -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$log" | tail -1 | grep -o -E "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" || true)
  echo "ok   $1: ${seconds}s, ${runs:-?} runs (${execs:-?}/s), $cov"
}

echo "== fuzz: ${harnesses[*]} (${seconds}s each${seed:+, seed $seed}, $jobs at a time)"
export -f run_one
export build here mode seconds seed
status=0
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || status=1
exit $status
