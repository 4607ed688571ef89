#!/bin/sh
# Writes /etc/guestd-hub/guestd-hub.conf as the guestd-hub package ships it,
# from the binary's own `--dump-config`, so the file and the configuration
# table cannot drift: every key, commented out, with its meaning and
# default, after a header naming the settings a packaged hub usually wants.
#
#   packaging/gen-hub-conf.sh GUESTD_HUB_BINARY OUTPUT
set -eu
[ $# -eq 2 ] || { echo "usage: $0 GUESTD_HUB_BINARY OUTPUT" >&2; exit 2; }
bin=$1
out=$2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT

{
    cat <<'HEADER'
; /etc/guestd-hub/guestd-hub.conf: guestd-hub's configuration.
;
; Every key is listed, commented out, at its default; uncomment a line to
; change it, then `systemctl restart guestd-hub`. `guestd-hub --dump-config`
; prints the configuration in effect. See guestd-hub(8) and
; /usr/share/doc/guestd-hub/fleet.md.
;
; On a libvirt host, the usual settings are:
;   [discovery]
;   libvirt_uri = qemu:///system
;   [log]
;   dir = /var/log/guestd-hub
; (/var/log/guestd-hub is the only log directory the unit may write.)
;
HEADER
    "$bin" -c /dev/null --dump-config | sed -e '1d' -e 's/^\([a-z_][a-z0-9_]*\) =/;\1 =/'
} >"$tmp"

# The commented file must configure nothing: loading it gives the defaults.
"$bin" -c "$tmp" --dump-config >/dev/null
mv "$tmp" "$out"
trap - EXIT
