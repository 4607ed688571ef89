#!/bin/sh
# Fetches and unpacks the Debian source packages the static guestd is built
# from, at exactly the versions of the -dev packages installed here (the ones
# the .deb links), so the static binary and the .deb carry the same code.
#
#   packaging/static/fetch-sources.sh DEST-DIR BINARY-PACKAGE...
#     e.g. fetch-sources.sh build-static/src libuv1-dev libcjson-dev libmimalloc-dev
#
# For each package it prints "SOURCE-DIR" (one line each, in order) after
# DEST-DIR/<source>-<version>/ holds the unpacked tree with Debian's patches
# applied. The download goes through apt with a PRIVATE configuration (its own
# sources list with deb-src lines made from this machine's Debian mirrors,
# its own lists and cache), so /etc/apt and /var/lib/apt are left as they are.
# Downloads are cached, keyed by source version, in $GUESTD_STATIC_CACHE
# (default /var/cache/guestd-static). Every file's SHA-256 is checked against
# the .dsc's Checksums-Sha256 field; dpkg-source checks them again on
# extraction. The .dsc itself is trusted because apt checked its hash against
# the Sources index that the archive's Release file signs.
set -eu

[ $# -ge 2 ] || { sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
dest=$1
shift
cache=${GUESTD_STATIC_CACHE:-/var/cache/guestd-static}
mkdir -p "$dest" "$cache"
dest=$(cd "$dest" && pwd)

die() { echo "fetch-sources.sh: $*" >&2; exit 1; }
log() { echo "fetch-sources.sh: $*" >&2; }

# ---- the private apt configuration (made once per run, on first need) -------

apt_dir=
cleanup() { [ -z "$apt_dir" ] || rm -rf "$apt_dir"; }
trap cleanup EXIT INT TERM

# deb-src lines for this machine's Debian entries (URIs under /debian or
# /debian-security), in the one-line and the deb822 formats.
debian_src_lines() {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" && $0 ~ /\/debian(-security)?\/? / { $1 = "deb-src"; print }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # One stanza per blank-line-separated block; Enabled: no is skipped.
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && uris ~ /\/debian(-security)?\/?( |$)/ && enabled != "no") {
                    n = split(uris, u, " "); m = split(suites, s, " ")
                    opt = signed != "" ? "[signed-by=" signed "] " : ""
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                        print "deb-src " opt u[i] " " s[j] " " comps
                }
                types = uris = suites = comps = signed = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            { key = tolower($1); sub(/^[^:]*:[ \t]*/, ""); }
            key == "types:" { types = $0 }
            key == "uris:" { uris = $0 }
            key == "suites:" { suites = $0 }
            key == "components:" { comps = $0 }
            key == "signed-by:" { signed = $0 }
            key == "enabled:" { enabled = tolower($0) }
            END { flush() }' "$f"
    done
}

apt_private() { # apt_private ARGS...: apt-get with the private configuration
    apt-get -q -o Dir::Etc::sourcelist="$apt_dir/sources.list" \
        -o Dir::Etc::sourceparts="$apt_dir/sources.list.d" \
        -o Dir::State="$apt_dir/state" -o Dir::State::status=/var/lib/dpkg/status \
        -o Dir::Cache="$apt_dir/cache" -o Debug::NoLocking=true \
        -o APT::Sandbox::User=root "$@"
}

apt_setup() {
    [ -z "$apt_dir" ] || return 0
    apt_dir=$(mktemp -d "${TMPDIR:-/tmp}/guestd-apt.XXXXXX")
    mkdir -p "$apt_dir/sources.list.d" "$apt_dir/state/lists/partial" \
        "$apt_dir/cache/archives/partial"
    debian_src_lines | sort -u >"$apt_dir/sources.list"
    [ -s "$apt_dir/sources.list" ] || die "no Debian mirror in /etc/apt/sources.list{,.d}"
    log "private apt sources:"
    sed 's/^/    /' "$apt_dir/sources.list" >&2
    apt_private update >&2 || die "apt-get update (private configuration) failed"
}

# ---- one package ------------------------------------------------------------

dsc_field_files() { # dsc_field_files DSC: "SHA256 SIZE NAME" lines
    awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on && NF == 3 { print }' "$1"
}

verify_dsc_files() { # verify_dsc_files DIR DSC
    n=0
    while read -r sum size name; do
        f="$1/$name"
        [ -f "$f" ] || die "$name (listed in $(basename "$2")) is missing"
        [ "$(wc -c <"$f")" -eq "$size" ] || die "$name: size differs from the .dsc"
        [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sum" ] || die "$name: SHA-256 differs from the .dsc"
        n=$((n + 1))
    done <<EOF
$(dsc_field_files "$2")
EOF
    [ "$n" -gt 0 ] || die "$(basename "$2") has no Checksums-Sha256 field"
}

for pkg in "$@"; do
    info=$(dpkg-query -W -f '${source:Package} ${source:Version} ${Status}\n' "$pkg" 2>/dev/null) ||
        die "$pkg is not installed (the static build uses the versions the .deb links)"
    set -- $info
    src=$1
    ver=$2
    [ "$5" = installed ] || die "$pkg is not installed"
    upver=${ver#*:}
    upver=${upver%-*}
    srcdir="$dest/$src-$ver"
    keyed="$cache/${src}_$ver"
    dsc="$keyed/${src}_${ver#*:}.dsc"
    if [ ! -f "$dsc" ]; then
        apt_setup
        log "downloading source $src $ver"
        rm -rf "$keyed.partial"
        mkdir -p "$keyed.partial"
        (cd "$keyed.partial" && apt_private source --download-only "$src=$ver" >&2) ||
            die "apt-get source $src=$ver failed (is that version still on the mirror?)"
        verify_dsc_files "$keyed.partial" "$keyed.partial/$(basename "$dsc")"
        rm -rf "$keyed"
        mv "$keyed.partial" "$keyed"
    fi
    verify_dsc_files "$keyed" "$dsc"
    log "$src $ver: every file matches the .dsc's Checksums-Sha256"
    if [ ! -f "$srcdir/.guestd-unpacked" ]; then
        rm -rf "$srcdir"
        # dpkg-source checks the .dsc's checksums again and applies Debian's
        # patches; without the Debian keyring it cannot check the .dsc's
        # signature, which apt's signed index has covered.
        dpkg-source --no-copy -x "$dsc" "$srcdir" >&2 || die "dpkg-source -x $dsc failed"
        : >"$srcdir/.guestd-unpacked"
    fi
    echo "$srcdir"
done
