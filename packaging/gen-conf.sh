#!/bin/sh
# Writes /etc/guestd/guestd.conf (or /etc/guestd-hub/guestd-hub.conf, when
# the binary is guestd-hub) as the package ships it, from the binary's own
# `--dump-config`, so the file and the configuration table cannot drift:
# every key, commented out, with its meaning and default; for the agent, then
# a commented hardened profile.
#
#   packaging/gen-conf.sh GUESTD_BINARY OUTPUT
#   packaging/gen-conf.sh GUESTD_HUB_BINARY OUTPUT
set -eu
[ $# -eq 2 ] || { echo "usage: $0 GUESTD_OR_GUESTD_HUB_BINARY OUTPUT" >&2; exit 2; }
bin=$1
out=$2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT

hub_header() {
    cat <<'EOF'
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
EOF
}

agent_header() {
    cat <<'EOF'
; /etc/guestd/guestd.conf: the guest agent's configuration.
;
; Every key is listed, commented out, at its default; uncomment a line to
; change it. `guestd --dump-config` prints the configuration in effect, and
; `guestd --set SECTION.KEY=VALUE` overrides one key for a run. After an
; edit, `systemctl reload guestd` applies the keys marked "runtime"; the
; others need `systemctl restart guestd`. See guestd(8) and
; /usr/share/doc/guestd/.
;
EOF
}

agent_trailer() {
    cat <<'EOF'

; ---------------------------------------------------------------------------
; A hardened profile: the host can watch this guest but not act in it.
; No exec, no file writes, no process, service or power changes (and, in
; the qemu-ga dialect, no clock, password, freeze or trim); ping, info,
; system.info, metrics, health, process.list, service.list/status,
; file.read/stat and config.get/set stay. To use it, uncomment the two lines
; below, and install the matching systemd sandbox:
;   mkdir -p /etc/systemd/system/guestd.service.d
;   cp /usr/share/doc/guestd/examples/hardened.conf /etc/systemd/system/guestd.service.d/
;   systemctl daemon-reload && systemctl restart guestd
;
;[commands]
;deny = exec*,file.write,process.kill,service.start,service.stop,service.restart,power.*,guest-set-time,guest-set-user-password,guest-fsfreeze-freeze*,guest-fstrim
EOF
}

case $(basename "$bin") in
guestd-hub*) header=hub_header trailer=true ;;
*) header=agent_header trailer=agent_trailer ;;
esac

{
    $header
    # The dump's own first line names the command; the rest is kept, with
    # each "key = value" line commented out.
    "$bin" -c /dev/null --dump-config | sed -e '1d' -e 's/^\([a-z_][a-z0-9_]*\) =/;\1 =/'
    $trailer
} >"$tmp"

# The commented file must configure nothing: loading it gives the defaults.
"$bin" -c "$tmp" --dump-config >/dev/null
mv "$tmp" "$out"
trap - EXIT
