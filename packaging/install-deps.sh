#!/usr/bin/env bash
# Installs the Debian packages guestd's build, tests, benchmarks and VM tests
# need. Idempotent, no prompts; refreshes the package lists first.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libcjson-dev libinih-dev check
  python3
  qemu-system-x86 busybox-static cpio kmod
  valgrind clang libclang-rt-14-dev
  qemu-guest-agent prometheus-node-exporter
  librsvg2-bin
  libvirt-daemon-driver-qemu libvirt-daemon libvirt-clients e2fsprogs
  dpkg-dev debootstrap debian-archive-keyring lintian
  # The static build (packaging/static.sh): musl-gcc, the kernel's headers,
  # and the -dev packages whose versions pick the source packages it builds
  # (libuv1-dev, libcjson-dev, libinih-dev and check above; libmimalloc-dev
  # for GUESTD_STATIC_MALLOC=mimalloc).
  musl-tools linux-libc-dev libmimalloc-dev file binutils xz-utils
  # guestd-hub (hub/): libvirt's C API, the HTTP library that serves
  # /metrics, libdeflate for its gzip (zlib for the tests that inflate it),
  # and the Prometheus server and promtool its tests scrape and check rules
  # with.
  libvirt-dev libmicrohttpd-dev libdeflate-dev zlib1g-dev prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every package is installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
