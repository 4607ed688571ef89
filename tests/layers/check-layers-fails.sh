#!/bin/sh
# Proves check-layers.sh can fail: a copy of guestd's source folders with an
# include planted a layer too high in each layer must make it exit 1 and
# name exactly those includes; the unchanged copy must pass.
#
# Usage: check-layers-fails.sh [SOURCE_ROOT]. Exits 0 when every case holds.
src=${1:-$(dirname "$0")/../..}
check=$src/tests/layers/check-layers.sh
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
failed=0

copy_tree() {
	rm -rf "$tmp/tree"
	mkdir "$tmp/tree" || exit 2
	for d in core transport collectors commands agent tools hub; do
		[ -d "$src/$d" ] && cp -R "$src/$d" "$tmp/tree/"
	done
}

# plant FILE LINE: FILE (new, below the copy) holds the one line LINE.
plant() {
	mkdir -p "$tmp/tree/$(dirname "$1")"
	printf '%s\n' "$2" >"$tmp/tree/$1"
}

copy_tree
if ! out=$(sh "$check" "$tmp/tree" 2>&1); then
	echo "FAIL: the unchanged copy does not pass: $out"
	failed=1
fi

# One include too high in each layer, and one allowed include beside them
# that must not be reported.
plant core/x.h '#include "agent/agent.h"'
plant core/json/x.c '#  include "transport/channel.h"'
plant transport/x.c '#include "commands/command.h"'
plant collectors/x.c '#include "transport/channel.h"'
plant commands/x.c '#include "agent/health.h"'
plant tools/x.c '#include "commands/dispatch.h"'
plant commands/y.c '#include "collectors/metrics.h"'
want='collectors/x.c:1: collectors -> transport
commands/x.c:1: commands -> agent
core/json/x.c:1: core -> transport
core/x.h:1: core -> agent
tools/x.c:1: tools -> commands
transport/x.c:1: transport -> commands'
sh "$check" "$tmp/tree" >"$tmp/out" 2>/dev/null
rc=$?
out=$(sort "$tmp/out")
if [ "$rc" -ne 1 ] || [ "$out" != "$want" ]; then
	printf 'FAIL: exit %s, printed:\n%s\nwant exit 1 and:\n%s\n' "$rc" "$out" "$want"
	failed=1
else
	echo "ok: exit 1 and the six planted includes named"
fi
exit $failed
