#!/usr/bin/env bash
# Install what the build and tests need from Debian packages, and fetch lwIP
# from Debian's source package into third_party/ (git-ignored).
#
# Idempotent: packages already installed are skipped and an lwIP tree whose
# stamp matches the pinned version is kept.  Needs root or sudo only when
# something is actually missing.
set -euo pipefail

PACKAGES=(gcc make binutils nasm gnu-efi qemu-system-x86 ovmf mtools gdisk
          dosfstools python3 dpkg-dev qemu-utils iperf prometheus clang libclang-rt-14-dev chromium
          console-setup-linux pkg-config libfuse3-dev fuse3 e2fsprogs xfsprogs btrfs-progs
          libnfs-dev)
LWIP_VERSION="2.1.3+dfsg1-2"
LWIP_ORIG_SHA256="0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24"
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/third_party"

# shellcheck source=tools/apt.sh
. "$top/tools/apt.sh"
apt_install_missing deps "${PACKAGES[@]}"

stamp="$dest/lwip.stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$LWIP_VERSION" ] && [ -d "$dest/lwip/src/core" ]; then
	exit 0
fi

# apt-get source needs deb-src entries.  When the machine has none, derive
# them from its own binary entries so the same mirror is used.
if ! apt-get source --print-uris "lwip=$LWIP_VERSION" >/dev/null 2>&1; then
	echo "deps: adding deb-src entries derived from the configured deb entries"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
			as_root tee /etc/apt/sources.list.d/appliance-deb-src.sources >/dev/null
	else
		grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' |
			as_root tee /etc/apt/sources.list.d/appliance-deb-src.list >/dev/null
	fi
	as_root apt-get update -q
fi

work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
echo "deps: fetching Debian's lwIP $LWIP_VERSION source package (apt-get source); its upstream"
echo "deps: tarball must match the sha256 pinned in tools/deps.sh"
(cd "$work" && apt_quiet deps "apt-get source lwip" apt-get source --download-only -q "lwip=$LWIP_VERSION")
orig=$(ls "$work"/lwip_*.orig.tar.* | grep -v '\.asc$' | head -n 1)
sum=$(sha256sum "$orig" | cut -d' ' -f1)
if [ "$sum" != "$LWIP_ORIG_SHA256" ]; then
	echo "deps: lwIP source checksum mismatch: got $sum, want $LWIP_ORIG_SHA256" >&2
	exit 1
fi
echo "deps: $(basename "$orig"): sha256 matches the pinned value"
(cd "$work" && apt_quiet deps "unpacking lwip" dpkg-source -x lwip_*.dsc lwip)
rm -rf "$dest/lwip"
mkdir -p "$dest"
mv "$work/lwip" "$dest/lwip"
echo "$LWIP_VERSION" > "$stamp"
echo "deps: lwIP $LWIP_VERSION unpacked in third_party/lwip"
