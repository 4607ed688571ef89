#!/bin/sh
# Builds the static guestd: one file that runs on any x86_64 Linux (kernel
# 3.10 on), whatever its libc or distribution, and its release tarball.
#
#   packaging/static.sh          build-static/guestd, build-static/guestctl and
#                                build-static/guestd-VERSION-x86_64-linux.tar.gz
#   packaging/static.sh --test   the same, with the unit and integration suites
#                                built against musl and run on the static agent
#
# GUESTD_STATIC_MALLOC=musl (the default) keeps musl's malloc; =mimalloc
# links Debian's mimalloc, built from its source package like libuv, in its
# place: 2-3x the pipelined throughput, but tens of MiB kept resident after
# large responses (docs/performance.md has the figures behind the choice).
#
# The compiler is musl-gcc (Debian's musl-tools). libuv, cJSON (and Check, for
# --test) are built from Debian's source packages at the versions of the -dev
# packages installed here, the ones the .deb links; packaging/static/
# fetch-sources.sh downloads them through a private apt configuration and
# checks them against their .dsc. inih's source package is built the same way
# when the mirror has it; otherwise Debian's own build of it (libinih-dev's
# libinih.a, same version, checked with dpkg --verify) is linked, which needs
# nothing of glibc that musl lacks (checked below). Needs: musl-tools,
# linux-libc-dev, dpkg-dev, cmake, pkg-config, libuv1-dev, libcjson-dev,
# libinih-dev (for their versions; libmimalloc-dev with =mimalloc), check and python3 for
# --test.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/build-static
prefix=$out/deps
jobs=$(nproc 2>/dev/null || echo 2)
test_mode=0
case "${1:-}" in
"") ;;
--test) test_mode=1 ;;
*) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

log() { echo "static.sh: $*" >&2; }
die() { echo "static.sh: $*" >&2; exit 1; }

malloc=${GUESTD_STATIC_MALLOC:-musl}
case "$malloc" in
mimalloc | musl) ;;
*) die "GUESTD_STATIC_MALLOC=$malloc: mimalloc or musl" ;;
esac

for tool in musl-gcc dpkg-source cmake pkg-config; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (apt-get install musl-tools dpkg-dev cmake pkg-config)"
done
export CC=musl-gcc
# Debian's hardening flags for the libraries, as their packages are built
# (_FORTIFY_SOURCE does nothing under musl and is left out).
export CFLAGS="-O2 -g -fstack-protector-strong -fPIE"
# Only the private prefix's .pc files: never the system's glibc libraries.
export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH=
mkdir -p "$out" "$prefix/lib/pkgconfig" "$prefix/include"

fetch() { # fetch BINARY-PACKAGE: prints the unpacked source directory
    sh "$root/packaging/static/fetch-sources.sh" "$out/src" "$1"
}

cmake_dep() { # cmake_dep NAME SOURCE-DIR [options...]
    name=$1
    srcdir=$2
    shift 2
    stamp="$prefix/.built-$(basename "$srcdir")"
    [ -f "$stamp" ] && return 0
    log "building $(basename "$srcdir") with musl"
    rm -rf "$out/deps-build/$name"
    cmake -S "$srcdir" -B "$out/deps-build/$name" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER=musl-gcc -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_POSITION_INDEPENDENT_CODE=ON "$@" >/dev/null
    cmake --build "$out/deps-build/$name" -j"$jobs" >/dev/null
    cmake --install "$out/deps-build/$name" >/dev/null
    : >"$stamp"
}

# ---- dependencies -------------------------------------------------------------

uv_src=$(fetch libuv1-dev)
cmake_dep libuv "$uv_src" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
# Only the archive: a stray libuv.so must not be what -luv finds.
rm -f "$prefix"/lib/libuv.so*

cjson_src=$(fetch libcjson-dev)
cmake_dep cjson "$cjson_src" -DBUILD_SHARED_LIBS=OFF -DENABLE_CJSON_TEST=OFF \
    -DENABLE_CJSON_UTILS=OFF -DENABLE_CUSTOM_COMPILER_FLAGS=OFF

inih_ver=$(dpkg-query -W -f '${Version}' libinih-dev 2>/dev/null) || die "libinih-dev is not installed"
if [ ! -f "$prefix/.built-inih-$inih_ver" ]; then
    if inih_src=$(fetch libinih-dev); then
        # inih is one file; Debian builds it with meson at its default
        # options, which are ini.h's own defaults: no -D needed.
        log "building libinih $inih_ver with musl"
        musl-gcc $CFLAGS -c "$inih_src/ini.c" -o "$out/ini.o"
        rm -f "$prefix/lib/libinih.a"
        ar rcs "$prefix/lib/libinih.a" "$out/ini.o"
        cp "$inih_src/ini.h" "$prefix/include/ini.h"
    else
        # The mirror has the .dsc but not the tarballs of some old sources.
        # Debian's own build of that same source, as installed, is then used:
        # an archive of plain C that calls only what musl also provides for
        # glibc-built objects (its glibc ABI shims: __ctype_b_loc, fopen64).
        log "libinih $inih_ver: source not on the mirror; using Debian's libinih.a of libinih-dev $inih_ver"
        dpkg --verify libinih-dev || die "libinih-dev's files differ from the package (dpkg --verify)"
        a=$(dpkg -L libinih-dev | grep '/libinih\.a$')
        h=$(dpkg -L libinih-dev | grep '/include/ini\.h$')
        allowed='_GLOBAL_OFFSET_TABLE_ __ctype_b_loc __stack_chk_fail fclose fgets fopen fopen64 free malloc realloc strchr strlen strncpy'
        for sym in $(nm -u "$a" | awk 'NF == 2 && $1 == "U" { print $2 }'); do
            case " $allowed " in
            *" $sym "*) ;;
            *) die "$a needs $sym, which was not checked against musl" ;;
            esac
        done
        cp "$a" "$prefix/lib/libinih.a"
        cp "$h" "$prefix/include/ini.h"
    fi
    cat >"$prefix/lib/pkgconfig/inih.pc" <<EOF
prefix=$prefix
Name: inih
Description: simple .INI file parser
Version: ${inih_ver%-*}
Libs: -L\${prefix}/lib -linih
Cflags: -I\${prefix}/include
EOF
    : >"$prefix/.built-inih-$inih_ver"
fi

malloc_obj=
if [ "$malloc" = mimalloc ]; then
    mi_src=$(fetch libmimalloc-dev)
    # Debian's own options (debian/rules) but the one-object build, which
    # replaces malloc, free and the rest when linked before musl's libc.a
    # (MI_OVERRIDE, on by default). MI_SECURE stays off, as in Debian's.
    cmake_dep mimalloc "$mi_src" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DMI_BUILD_SHARED=OFF -DMI_BUILD_STATIC=OFF -DMI_BUILD_OBJECT=ON \
        -DMI_BUILD_TESTS=OFF -DMI_INSTALL_TOPLEVEL=ON -DMI_OVERRIDE=ON
    malloc_obj=$prefix/lib/mimalloc.o
    [ -f "$malloc_obj" ] || die "$malloc_obj was not built"
fi

tests=OFF
if [ "$test_mode" -eq 1 ]; then
    tests=ON
    check_src=$(fetch check)
    cmake_dep check "$check_src" -DBUILD_TESTING=OFF \
        -DCHECK_ENABLE_SUBUNIT=OFF -DCHECK_ENABLE_TIMEOUT_TESTS=OFF -DBUILD_SHARED_LIBS=OFF
    rm -f "$prefix"/lib/libcheck.so*
    # Check's CMake build names its archive libcheck.a but writes the
    # autotools build's -lcheck_pic into check.pc.
    sed -i 's/-lcheck_pic/-lcheck/' "$prefix/lib/pkgconfig/check.pc"
fi

# ---- guestd -----------------------------------------------------------------

# musl-gcc sees only musl's headers; guestd also includes the kernel's UAPI
# headers (linux/vm_sockets.h, linux/fs.h, ...): Debian's linux-libc-dev, the
# same ones the .deb is built with, through links in a private directory.
kinc=$prefix/kernel-include
mkdir -p "$kinc"
for d in linux asm-generic x86_64-linux-gnu/asm; do
    [ -d "/usr/include/$d" ] || die "/usr/include/$d missing (apt-get install linux-libc-dev)"
    ln -sfn "/usr/include/$d" "$kinc/$(basename "$d")"
done

log "building guestd (musl, -static) in $out"
unset CFLAGS
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=musl-gcc \
    -DCMAKE_C_FLAGS="-isystem $kinc" \
    -DGUESTD_FULLY_STATIC=ON -DGUESTD_WERROR=ON -DGUESTD_BUILD_TESTS=$tests \
    -DGUESTD_UV_ARCHIVE="$prefix/lib/libuv_a.a" -DGUESTD_INIH_ARCHIVE="$prefix/lib/libinih.a" \
    -DGUESTD_MALLOC_OBJECT="$malloc_obj" >/dev/null
cmake --build "$out" -j"$jobs"

for bin in guestd guestctl; do
    f="$out/$bin"
    file -L "$f" | grep -q 'statically linked' || die "$bin is not statically linked: $(file -L "$f")"
    if ldd "$f" >/dev/null 2>&1; then die "ldd sees $bin as a dynamic executable"; fi
done
log "$(file "$out/guestd")"
if [ "$malloc" = mimalloc ]; then
    # MI_OVERRIDE: malloc, calloc, realloc and free are mimalloc's. (musl's
    # own few internal allocations, atexit, locale, posix_spawn's file
    # actions, go through __libc_malloc to its allocator by design, and
    # never meet the application's.)
    for f in malloc calloc realloc free; do
        a=$(nm "$out/guestd" | awk -v s="$f" '$3 == s { print $1 }')
        b=$(nm "$out/guestd" | awk -v s="mi_$f" '$3 == s { print $1 }')
        [ -n "$a" ] && [ "$a" = "$b" ] || die "guestd's $f is not mimalloc's mi_$f"
    done
fi

# ---- the release tarball --------------------------------------------------------

version=$("$out/guestd" --version | awk '{ print $2; exit }')
name=guestd-$version-x86_64-linux
stage=$out/tarball/$name
rm -rf "$out/tarball"
mkdir -p "$stage/licenses"
install -m 755 "$out/guestd" "$out/guestctl" "$stage/"
strip "$stage/guestd" "$stage/guestctl"
install -m 755 "$root/packaging/static/install.sh" "$stage/install.sh"
install -m 755 "$root/packaging/static/guestd.init" "$root/packaging/static/guestd.openrc" "$stage/"
install -m 644 "$root/packaging/guestd.service" "$root/packaging/60-guestd.rules" \
    "$root/packaging/hardened.conf" "$out/packaging/guestd.conf" \
    "$out/packaging/guestd.8.gz" "$out/tools/guestctl.1.gz" "$root/docs/install.md" "$stage/"
# A static binary carries its libraries: their licences go with it.
install -m 644 "$root/packaging/copyright" "$stage/licenses/guestd"
install -m 644 "$uv_src/debian/copyright" "$stage/licenses/libuv"
install -m 644 "$cjson_src/debian/copyright" "$stage/licenses/cjson"
install -m 644 /usr/share/doc/libinih-dev/copyright "$stage/licenses/inih"
install -m 644 /usr/share/doc/musl-dev/copyright "$stage/licenses/musl"
[ "$malloc" != mimalloc ] || install -m 644 "$mi_src/debian/copyright" "$stage/licenses/mimalloc"
printf '%s\n' "$version" >"$stage/VERSION"
# Reproducible: fixed owner, order and times (the commit's, when in git).
mtime=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
    -C "$out/tarball" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
log "wrote $out/$name.tar.gz ($(wc -c <"$out/$name.tar.gz") bytes)"

if [ "$test_mode" -eq 1 ]; then
    log "running the unit and integration suites on the static build"
    ctest --test-dir "$out" -L 'unit|integration' --output-on-failure
fi
