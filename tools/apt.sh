# Shared by tools/deps.sh and tools/peer/build.sh (source it, do not run it).

# Run a command as root: directly when we are root, else through sudo.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install_missing LABEL PACKAGE...: install the packages that dpkg does
# not report as installed, refreshing the package lists first.
apt_install_missing() {
	local label=$1 p missing=()
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	echo "$label: installing ${missing[*]}"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# apt_quiet LABEL WHAT CMD...: run an apt/dpkg fetch or unpack with its
# chatter in a log.  apt's "Download is performed unsandboxed" notice and
# dpkg-source's "cannot verify signature ... no public key" (no Debian
# keyring installed) are expected here and not shown: what vouches for the
# files is apt's signed archive index for binary packages and our pinned
# sha256 for source tarballs.  Any other warning is shown; a failure shows
# the whole log and stops the script.
apt_quiet() {
	local label=$1 what=$2 log rc=0
	shift 2
	log=$(mktemp)
	"$@" >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		echo "$label: $what failed (exit $rc): $*" >&2
		sed 's/^/  /' "$log" >&2
		rm -f "$log"
		exit 1
	fi
	grep -E '^(W:|E:|dpkg-source: warning|gpgv:)' "$log" |
		grep -vE 'Download is performed unsandboxed|no public key|cannot verify (inline )?signature|Can.t check signature|^gpgv: +(using|Signature made)|^gpgv: +issuer' |
		sed "s/^/$label: /" >&2 || true
	rm -f "$log"
}
