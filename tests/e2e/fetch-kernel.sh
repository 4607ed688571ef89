#!/bin/sh
# Fetch the current Debian kernel image package and unpack it into a cache
# outside the repository, for the real-VM tests (tests/e2e/).
#
#   tests/e2e/fetch-kernel.sh          prints the unpacked directory on stdout
#
# The directory holds boot/vmlinuz-<ver> and lib/modules/<ver>/. It is keyed by
# the package name and version, so a second run (or a run when the archive is
# unreachable but a kernel is already cached) takes well under a second.
#
# Environment:
#   GUESTD_E2E_CACHE   cache root (default /var/cache/guestd-e2e)
#   GUESTD_E2E_KERNEL_PKG  a specific package, e.g. linux-image-6.1.0-28-amd64
#                          (default: what linux-image-amd64 depends on)
set -eu

CACHE=${GUESTD_E2E_CACHE:-/var/cache/guestd-e2e}
KDIR="$CACHE/kernel"
mkdir -p "$KDIR"

log() { echo "fetch-kernel: $*" >&2; }

# Which package does linux-image-amd64 pull in today? Reads apt's lists only;
# runs "apt-get update" once if they are missing or do not know the package.
resolve_pkg() {
    if [ -n "${GUESTD_E2E_KERNEL_PKG:-}" ]; then
        echo "$GUESTD_E2E_KERNEL_PKG"
        return 0
    fi
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}
pkg_version() {
    apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n 1
}

newest_cached() {
    # The most recently unpacked kernel, for when apt cannot answer.
    ls -1dt "$KDIR"/*/.complete 2>/dev/null | head -n 1 | xargs -r dirname
}

pkg=$(resolve_pkg || true)
ver=""
[ -n "$pkg" ] && ver=$(pkg_version "$pkg")
if [ -z "$pkg" ] || [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
    cached=$(newest_cached)
    if [ -n "$cached" ]; then
        log "apt does not name a kernel package; using cached $cached"
        echo "$cached"
        exit 0
    fi
    log "apt lists do not know linux-image-amd64; running apt-get update"
    apt-get update -qq >&2 || log "apt-get update failed"
    pkg=$(resolve_pkg || true)
    [ -n "$pkg" ] && ver=$(pkg_version "$pkg")
    if [ -z "$pkg" ] || [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        log "cannot resolve the Debian kernel package"
        exit 1
    fi
fi

# Version strings may hold ':' (epoch) and '+'; keep the key filename-safe.
key=$(printf '%s_%s' "$pkg" "$ver" | tr ':/' '__')
dest="$KDIR/$key"
if [ -f "$dest/.complete" ]; then
    echo "$dest"
    exit 0
fi

log "downloading $pkg=$ver"
work=$(mktemp -d "$KDIR/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
(
    cd "$work"
    # apt-get download runs as the _apt user when it can; the directory must
    # be writable for it.
    chmod 0777 "$work"
    if ! apt-get download -q "$pkg=$ver" >&2; then
        log "download failed; refreshing the lists and trying again"
        apt-get update -qq >&2 || true
        apt-get download -q "$pkg=$ver" >&2
    fi
)
deb=$(ls -1 "$work"/*.deb | head -n 1)
[ -n "$deb" ] || { log "no .deb downloaded"; exit 1; }
mkdir -p "$work/root"
dpkg-deb -x "$deb" "$work/root"
vmlinuz=$(ls -1 "$work/root/boot"/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || { log "package $pkg has no boot/vmlinuz-*"; exit 1; }
printf '%s\n' "$pkg=$ver" > "$work/root/.complete"
# Another run may have finished first; its copy is as good as ours.
if ! mv -T "$work/root" "$dest" 2>/dev/null && [ ! -f "$dest/.complete" ]; then
    rm -rf "$dest"
    mv -T "$work/root" "$dest"
fi
log "unpacked into $dest"
echo "$dest"
