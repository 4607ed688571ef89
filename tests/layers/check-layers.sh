#!/bin/sh
# The include rule between guestd's folders (README, "Layout"): a file may
# include from its own folder and from the folders below it, never from one
# above. Layers, lowest first:
#
#   core/                      includes nothing of guestd's outside core/
#   transport/, collectors/    core/ and their own folder
#   commands/                  core/, transport/, collectors/, commands/
#   agent/                     anything (the composition root)
#   tools/, hub/               core/, transport/, tools/, hub/: the host side
#                              never reaches into the agent's commands or root
#
# Usage: check-layers.sh [SOURCE_ROOT]. Prints every include that breaks the
# rule as FILE:LINE: FROM -> TO and exits 1 if there is one.
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 2

allowed() {
	case $1 in
	core) echo "core" ;;
	transport) echo "core transport" ;;
	collectors) echo "core collectors" ;;
	commands) echo "core transport collectors commands" ;;
	agent) echo "core transport collectors commands agent" ;;
	tools) echo "core transport tools" ;;
	hub) echo "core transport tools hub" ;;
	*) echo "" ;;
	esac
}

guestd_folders="core transport collectors commands agent tools hub"
tmp=$(mktemp) || exit 2
bad=0
checked=0
for dir in $guestd_folders; do
	[ -d "$dir" ] || continue
	ok=$(allowed "$dir")
	# Every .c and .h below the folder, core/json/ included.
	for f in $(find "$dir" -name '*.[ch]' | sort); do
		checked=$((checked + 1))
		# Quoted includes with a folder: #include "folder/file.h".
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"/]*/' "$f" |
			sed 's/^\([0-9]*\):[^"]*"\([^"/]*\)\/.*/\1 \2/' >"$tmp"
		while read -r line to; do
			case " $guestd_folders " in
			*" $to "*) ;;
			*) continue ;; # not one of guestd's folders
			esac
			case " $ok " in
			*" $to "*) ;;
			*)
				echo "$f:$line: $dir -> $to"
				bad=1
				;;
			esac
		done <"$tmp"
	done
done
rm -f "$tmp"
if [ "$checked" -eq 0 ]; then
	echo "check-layers: no sources found under $root" >&2
	exit 2
fi
if [ "$bad" -ne 0 ]; then
	echo "check-layers: includes point up a layer (see above)" >&2
	exit 1
fi
echo "check-layers: $checked files, every include points down or sideways"
