#!/bin/sh
# Installs (or removes) the static guestd from its release tarball, on any
# x86_64 Linux guest: run it from the unpacked guestd-VERSION-x86_64-linux/.
# The files go where the .deb puts them; the agent is started the way the
# guest's init does it:
#   systemd  guestd.service and 60-guestd.rules: udev starts the agent when
#            the host's port appears, as with the .deb
#   OpenRC   /etc/init.d/guestd (supervise-daemon restarts it), runlevel default
#   sysvinit /etc/init.d/guestd (LSB headers), enabled with update-rc.d or
#            chkconfig when the guest has one
#   none     files only; the line to give your supervisor is printed
#
#   install.sh [--root DIR] [--init systemd|openrc|sysv|none]   install or upgrade
#   install.sh [--root DIR] --uninstall [--purge]
#
# --root DIR works on a guest image mounted at DIR (nothing is started or
# stopped; --init defaults to what DIR has). A changed /etc/guestd/guestd.conf
# is kept, the shipped one written beside it as guestd.conf.new. --uninstall
# keeps /etc/guestd/guestd.conf unless --purge is given; --purge also deletes
# the agent's state and logs (/var/lib/guestd, /var/log/guestd).
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

root=
action=install
purge=0
init=
while [ $# -gt 0 ]; do
    case "$1" in
    --root) [ $# -ge 2 ] || usage; root=${2%/}; shift 2 ;;
    --init) [ $# -ge 2 ] || usage; init=$2; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ "$purge" -eq 0 ] || [ "$action" = uninstall ] || usage
case "$init" in "" | systemd | openrc | sysv | none) ;; *) usage ;; esac
here=$(cd "$(dirname "$0")" && pwd)
live=0
[ -n "$root" ] || live=1

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

# The .deb owns these paths when it is installed: one or the other.
if [ "$live" -eq 1 ] && command -v dpkg-query >/dev/null 2>&1 &&
    dpkg-query -W -f '${Status}' guestd 2>/dev/null | grep -q ' installed$'; then
    die "the guestd .deb is installed; remove it first (dpkg -r guestd)"
fi

# The directory that already holds DIR's files of this kind (split /usr or
# merged), else the .deb's.
pick_dir() { # pick_dir DEFAULT CANDIDATE...
    d0=$1
    shift
    for d in "$@"; do
        if [ -d "$root$d" ] && [ -n "$(ls -A "$root$d" 2>/dev/null)" ]; then
            echo "$d"
            return
        fi
    done
    echo "$d0"
}
unit_dir=$(pick_dir /lib/systemd/system /lib/systemd/system /usr/lib/systemd/system)
rules_dir=$(pick_dir /lib/udev/rules.d /lib/udev/rules.d /usr/lib/udev/rules.d)

detect_init() {
    if [ "$live" -eq 1 ]; then
        if [ -d /run/systemd/system ]; then echo systemd; return; fi
        if [ -d /run/openrc ] || command -v openrc-run >/dev/null 2>&1; then echo openrc; return; fi
    else
        for f in /lib/systemd/systemd /usr/lib/systemd/systemd; do
            if [ -x "$root$f" ]; then echo systemd; return; fi
        done
        for f in /sbin/openrc-run /usr/sbin/openrc-run /usr/bin/openrc-run; do
            if [ -x "$root$f" ]; then echo openrc; return; fi
        done
    fi
    if [ -d "$root/etc/init.d" ]; then echo sysv; else echo none; fi
}

# path-in-tarball destination mode
files() {
    cat <<EOF
guestd /usr/sbin/guestd 755
guestctl /usr/bin/guestctl 755
guestd.8.gz /usr/share/man/man8/guestd.8.gz 644
guestctl.1.gz /usr/share/man/man1/guestctl.1.gz 644
install.md /usr/share/doc/guestd/install.md 644
hardened.conf /usr/share/doc/guestd/examples/hardened.conf 644
licenses/guestd /usr/share/doc/guestd/copyright 644
licenses/libuv /usr/share/doc/guestd/licenses/libuv 644
licenses/cjson /usr/share/doc/guestd/licenses/cjson 644
licenses/inih /usr/share/doc/guestd/licenses/inih 644
licenses/musl /usr/share/doc/guestd/licenses/musl 644
install.sh /usr/share/guestd/install.sh 755
VERSION /usr/share/guestd/VERSION 644
EOF
    case "$1" in
    systemd)
        echo "guestd.service $unit_dir/guestd.service 644"
        echo "60-guestd.rules $rules_dir/60-guestd.rules 644"
        ;;
    openrc) echo "guestd.openrc /etc/init.d/guestd 755" ;;
    sysv) echo "guestd.init /etc/init.d/guestd 755" ;;
    esac
}

put() { # put SRC DST MODE: copy beside, then rename over (a running binary is safe)
    cp "$here/$1" "$root$2.guestd-tmp"
    chmod "$3" "$root$2.guestd-tmp"
    mv -f "$root$2.guestd-tmp" "$root$2"
}

systemd_reload() { # what the .deb's postinst/postrm do
    systemctl --system daemon-reload >/dev/null || true
    if command -v udevadm >/dev/null 2>&1; then
        udevadm control --reload-rules || true
        udevadm trigger --action="$1" --subsystem-match=virtio-ports \
            --attr-match=name=org.guestd.agent.0 || true
        udevadm settle --timeout=30 || true
    fi
}

# Which init the installed copy was set up for (for upgrade and uninstall).
installed_init() {
    if [ -f "$root$unit_dir/guestd.service" ]; then echo systemd
    elif [ -f "$root/etc/init.d/guestd" ] && head -1 "$root/etc/init.d/guestd" | grep -q openrc-run; then echo openrc
    elif [ -f "$root/etc/init.d/guestd" ]; then echo sysv
    else echo none; fi
}

stop_agent() { # stop_agent INIT
    [ "$live" -eq 1 ] || return 0
    case "$1" in
    systemd) systemctl stop guestd.service >/dev/null 2>&1 || true ;;
    openrc) rc-service guestd stop >/dev/null 2>&1 || true ;;
    sysv) /etc/init.d/guestd stop >/dev/null 2>&1 || true ;;
    esac
}

if [ "$action" = install ]; then
    if [ "$live" -eq 1 ]; then
        [ "$(uname -m)" = x86_64 ] || die "this build is for x86_64, not $(uname -m)"
        [ "$(id -u)" -eq 0 ] || die "run as root"
    fi
    [ -f "$here/guestd" ] && [ -f "$here/VERSION" ] || die "run me from the unpacked tarball"
    version=$(cat "$here/VERSION")
    [ -n "$init" ] || init=$(detect_init)
    old=none
    upgrade=0
    if [ -x "$root/usr/sbin/guestd" ]; then
        upgrade=1
        old=$(installed_init)
        # Set up for another init before: take that set-up away first.
        if [ "$old" != "$init" ]; then
            "$here/install.sh" ${root:+--root "$root"} --uninstall >/dev/null
            upgrade=0
        fi
    fi
    say "installing guestd $version (init: $init)${root:+ into $root}"
    files "$init" | while read -r src dst mode; do
        mkdir -p "$root$(dirname "$dst")"
        put "$src" "$dst" "$mode"
    done
    mkdir -p "$root/etc/guestd"
    if [ -e "$root/etc/guestd/guestd.conf" ] && ! cmp -s "$here/guestd.conf" "$root/etc/guestd/guestd.conf"; then
        cp "$here/guestd.conf" "$root/etc/guestd/guestd.conf.new"
        say "kept your /etc/guestd/guestd.conf; the shipped one is guestd.conf.new"
    else
        put guestd.conf /etc/guestd/guestd.conf 644
    fi
    if [ "$live" -eq 0 ]; then
        case "$init" in
        openrc) mkdir -p "$root/etc/runlevels/default"
            ln -sf /etc/init.d/guestd "$root/etc/runlevels/default/guestd" ;;
        sysv) say "--root: enable /etc/init.d/guestd in the image (update-rc.d guestd defaults)" ;;
        esac
    else
        case "$init" in
        systemd)
            # udev starts the agent now if the port is there (the unit is
            # static: SYSTEMD_WANTS from the rule is what starts it).
            systemd_reload add
            [ "$upgrade" -eq 0 ] || systemctl restart guestd.service >/dev/null 2>&1 || true
            ;;
        openrc)
            rc-update add guestd default >/dev/null
            if [ "$upgrade" -eq 1 ]; then rc-service guestd restart; else rc-service guestd start; fi
            ;;
        sysv)
            if command -v update-rc.d >/dev/null 2>&1; then update-rc.d guestd defaults >/dev/null
            elif command -v chkconfig >/dev/null 2>&1; then chkconfig --add guestd
            else say "enable /etc/init.d/guestd in your runlevels (no update-rc.d or chkconfig here)"; fi
            if [ "$upgrade" -eq 1 ]; then /etc/init.d/guestd restart; else /etc/init.d/guestd start; fi
            ;;
        esac
    fi
    if [ "$init" = none ]; then
        mkdir -p "$root/var/lib/guestd" "$root/var/log/guestd"
        say "no init set up: run /usr/sbin/guestd under your supervisor, in the foreground"
        say "  (it logs to stderr and waits for the port), e.g. an inittab line:"
        say "  gd:2345:respawn:/usr/sbin/guestd"
    fi
    say "done"
else
    init=$(installed_init)
    say "removing guestd${root:+ from $root}"
    stop_agent "$init"
    if [ "$live" -eq 1 ]; then
        case "$init" in
        openrc) rc-update del guestd default >/dev/null 2>&1 || true ;;
        sysv)
            if command -v update-rc.d >/dev/null 2>&1; then update-rc.d -f guestd remove >/dev/null 2>&1 || true
            elif command -v chkconfig >/dev/null 2>&1; then chkconfig --del guestd || true; fi
            ;;
        esac
    else
        rm -f "$root/etc/runlevels/default/guestd"
    fi
    files "$init" | while read -r src dst mode; do
        rm -f "$root$dst"
    done
    rm -f "$root/etc/guestd/guestd.conf.new"
    [ "$live" -eq 0 ] || [ "$init" != systemd ] || systemd_reload change
    if [ "$purge" -eq 1 ]; then
        rm -rf "$root/var/lib/guestd" "$root/var/log/guestd" "$root/run/guestd"
        rm -f "$root/etc/guestd/guestd.conf"
    fi
    for d in /etc/guestd /usr/share/doc/guestd/licenses /usr/share/doc/guestd/examples \
        /usr/share/doc/guestd /usr/share/guestd; do
        rmdir "$root$d" 2>/dev/null || true
    done
    say "done"
fi
