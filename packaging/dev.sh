#!/usr/bin/env bash
# The two commands of README's quick start:
#   packaging/dev.sh demo   installs, builds, and runs the main job: a VM with
#                           guestd inside, and the host talking to it
#   packaging/dev.sh test   installs, builds with -Werror, and runs the whole
#                           test suite, plain, under ASan+UBSan (unit,
#                           integration and two VM suites), a subset under
#                           valgrind, and the static (musl) build's: its unit
#                           and integration suites, and its VM suites
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

build() { # build DIR [cmake options...]
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

case "${1:-}" in
  demo)
    # A Debian 12 VM with guestd installed from the .deb built here, and the
    # host side with guestctl (tests/e2e/demo_debian.py says what it does).
    packaging/install-deps.sh
    build build
    if [ "$(id -u)" -eq 0 ]; then
      exec python3 tests/e2e/demo_debian.py --build-dir build
    fi
    echo "== the demo needs root (debootstrap, dpkg in a chroot): running it with sudo"
    exec sudo python3 tests/e2e/demo_debian.py --build-dir build
    ;;
  test)
    packaging/install-deps.sh
    echo "== build (-Werror)"
    build build -DGUESTD_WERROR=ON
    # One suite at a time: the exec and service suites time real children,
    # and two cores shared by parallel suites make those timings lie.
    echo "== every suite: unit, integration, VM, benchmark smoke runs"
    ctest --test-dir build --output-on-failure -LE 'valgrind|static'
    echo "== unit suites under ASan+UBSan"
    build build-asan -DGUESTD_WERROR=ON -DGUESTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -L 'unit|integration'
    echo "== VM suites with the ASan+UBSan agent: the port unplugged mid-write, floods, hot-plug"
    ctest --test-dir build-asan --output-on-failure -R '^e2e\.test_vm_(channel|faults)$'
    echo "== integration suites under valgrind memcheck (the subset docs/security.md names)"
    ctest --test-dir build -L valgrind --output-on-failure
    echo "== the static build (musl, packaging/static.sh): unit and integration suites on it"
    packaging/static.sh --test
    echo "== VM suites of the static build: the busybox guest with no .so, a Debian 11 guest"
    GUESTD_VM_STATIC_REQUIRED=1 ctest --test-dir build --output-on-failure -L static
    ;;
  *)
    echo "usage: packaging/dev.sh demo|test" >&2
    exit 2
    ;;
esac
