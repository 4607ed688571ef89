#!/bin/sh
# Installs (or removes) guestd, or guestctl, from its .deb on a guest without
# dpkg: the same files as `dpkg -i`, and the package's own maintainer scripts
# run the same way, so the result is the same. Needs only a shell, dd, tail,
# head -c, awk, cmp, tar and gzip (or xz/zstd for a package compressed with
# them).
#
#   install.sh [--root DIR] PACKAGE.deb                      install or upgrade
#   install.sh [--root DIR] --uninstall [--purge] PACKAGE.deb
#
# --root DIR works on a guest image mounted at DIR instead of this system
# (the maintainer scripts are then not run: they act on the running system).
# A changed /etc/guestd/guestd.conf is kept; the packaged one is written next
# to it as guestd.conf.new. --uninstall keeps /etc/guestd/guestd.conf unless
# --purge is given; --purge also deletes the agent's state and logs.
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

root=
action=install
purge=0
while [ $# -gt 0 ]; do
    case "$1" in
    --root) [ $# -ge 2 ] || usage; root=${2%/}; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage ;;
    -*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || usage
deb=$1
[ -f "$deb" ] || { echo "install.sh: no such file: $deb" >&2; exit 1; }
[ "$purge" -eq 0 ] || [ "$action" = uninstall ] || usage

work=$(mktemp -d "${TMPDIR:-/tmp}/guestd-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# ---- reading the .deb (an ar archive: "!<arch>\n", then 60-byte headers) ----

ar_extract() { # ar_extract DEB PREFIX OUTFILE: the first member named PREFIX*
    size_total=$(wc -c <"$1")
    magic=$(dd if="$1" bs=8 count=1 2>/dev/null)
    [ "$magic" = "!<arch>" ] || { echo "install.sh: $1 is not a .deb" >&2; exit 1; }
    off=8
    while [ "$off" -lt "$size_total" ]; do
        hdr=$(dd if="$1" bs=1 skip="$off" count=60 2>/dev/null)
        name=$(printf '%s' "$hdr" | cut -c1-16 | sed 's/[ /]*$//')
        size=$(printf '%s' "$hdr" | cut -c49-58 | tr -d ' ')
        data=$((off + 60))
        case "$name" in
        "$2"*)
            # tail's complaint when head stops reading is noise; the size
            # check below catches a short read.
            tail -c +$((data + 1)) "$1" 2>/dev/null | head -c "$size" >"$3"
            [ "$(wc -c <"$3")" -eq "$size" ] ||
                { echo "install.sh: $1: short member $name" >&2; exit 1; }
            echo "$name"
            return 0
            ;;
        esac
        off=$((data + size + size % 2))
    done
    echo "install.sh: $1 has no $2 member" >&2
    exit 1
}

untar() { # untar MEMBER-NAME FILE DIR
    mkdir -p "$3"
    case "$1" in
    *.gz) gzip -dc "$2" | tar -x -C "$3" ;;
    *.xz) xz -dc "$2" | tar -x -C "$3" ;;
    *.zst) zstd -dcq "$2" | tar -x -C "$3" ;;
    *.tar) tar -x -C "$3" -f "$2" ;;
    *) echo "install.sh: cannot unpack $1" >&2; exit 1 ;;
    esac
}

m=$(ar_extract "$deb" control.tar "$work/control.tar")
untar "$m" "$work/control.tar" "$work/control"
m=$(ar_extract "$deb" data.tar "$work/data.tar")
untar "$m" "$work/data.tar" "$work/data"
version=$(sed -n 's/^Version: //p' "$work/control/control")
# guestd, or guestctl (its own package, which guestd recommends).
package=$(sed -n 's/^Package: //p' "$work/control/control")
[ -f "$work/control/conffiles" ] || : >"$work/control/conffiles"

is_conffile() { grep -qx "$1" "$work/control/conffiles"; }

# The maintainer scripts expect Debian's deb-systemd-invoke; a guest without
# dpkg gets a stand-in that calls systemctl (policy-rc.d is Debian's too).
mkdir -p "$work/bin"
cat >"$work/bin/deb-systemd-invoke" <<'EOF'
#!/bin/sh
exec systemctl "$@"
EOF
chmod 755 "$work/bin/deb-systemd-invoke"

run_script() { # run_script NAME ARGS...: a maintainer script, on / only
    s="$work/control/$1"
    shift
    [ -f "$s" ] || return 0
    if [ -n "$root" ]; then
        echo "install.sh: --root: not running the $(basename "$s") script"
        return 0
    fi
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        sh "$s" "$@"
    else
        PATH="$work/bin:$PATH" sh "$s" "$@"
    fi
}

# Files and directories of the package, deepest last ("./usr/sbin/guestd").
(cd "$work/data" && find . ! -type d | sort) >"$work/files"
(cd "$work/data" && find . -mindepth 1 -type d | sort) >"$work/dirs"

# An upgrade when an agent is installed already: the postinst's "$2" is the
# version it replaces.
old=
if [ -z "$root" ] && [ "$package" = guestd ] && [ -x /usr/sbin/guestd ]; then
    old=$(/usr/sbin/guestd --version 2>/dev/null | awk '{ print $2; exit }') || true
    [ -n "$old" ] || old=unknown
fi

if [ "$action" = install ]; then
    echo "install.sh: installing $package $version${root:+ into $root}"
    while IFS= read -r d; do
        # mkdir -p follows an existing symlink (/lib -> usr/lib), never replaces it.
        mkdir -p "$root/${d#./}"
    done <"$work/dirs"
    while IFS= read -r f; do
        p=${f#.}
        src="$work/data/${f#./}"
        dst="$root$p"
        if is_conffile "$p" && [ -e "$dst" ]; then
            if ! cmp -s "$src" "$dst"; then
                cp -p "$src" "$dst.new"
                echo "install.sh: kept your $p; the packaged one is $p.new"
            fi
            continue
        fi
        # Copy beside, then rename over: a running binary is replaced safely.
        cp -P -p "$src" "$dst.guestd-tmp"
        mv -f "$dst.guestd-tmp" "$dst"
    done <"$work/files"
    run_script postinst configure $old
    echo "install.sh: done"
else
    echo "install.sh: removing $package${root:+ from $root}"
    run_script prerm remove
    while IFS= read -r f; do
        p=${f#.}
        if is_conffile "$p" && [ "$purge" -eq 0 ]; then
            continue
        fi
        rm -f "$root$p"
    done <"$work/files"
    run_script postrm remove
    if [ "$purge" -eq 1 ]; then
        run_script postrm purge
        if [ -n "$root" ] && [ "$package" = guestd ]; then
            rm -rf "$root/var/lib/guestd" "$root/var/log/guestd"
            rm -f "$root/etc/guestd/guestd.conf.new"
        fi
    fi
    # The package's own directories, deepest first, when nothing else is in
    # them (dpkg does the same).
    sort -r "$work/dirs" | while IFS= read -r d; do
        rmdir "$root/${d#./}" 2>/dev/null || true
    done
    echo "install.sh: done"
fi
