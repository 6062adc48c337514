#!/usr/bin/env bash
# Build the Linux peer for `make bench-peer` into build/peer/:
#   vmlinuz            stock Debian kernel (linux-image-<abi>-amd64, pinned)
#   initramfs.cpio.gz  busybox-static + fio (static, from Debian's source
#                      package, pinned and checksummed) + the nvme/ahci
#                      modules and their dependencies, in load order
# The /init script is generated per run by tools/peer/peer.py (it carries the
# workload list), so only the static part is built here.
#
# Idempotent: each step is skipped when its output exists and its stamp
# matches the pinned version.  Needs root (or sudo) only to install missing
# host packages.
set -euo pipefail

KERNEL_ABI="6.1.0-56-amd64"
KERNEL_DEB_VERSION="6.1.192-2"
BUSYBOX_VERSION="1:1.35.0-4+deb12u1+b1"
FIO_VERSION="3.33-3"
FIO_ORIG_SHA256="d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc"
# Host tools: kmod for depmod/modprobe --show-depends, cpio for the archive,
# libaio-dev for fio's static libaio engine, gnuplot-nox for the chart.
PACKAGES=(kmod cpio libaio-dev gnuplot-nox dpkg-dev gcc make zlib1g-dev)
# Modules the peer loads, by name; their dependencies are resolved on the host.
MODULES=(nvme ahci sd_mod)

top=$(cd "$(dirname "$0")/../.." && pwd)
out="$top/build/peer"
tp="$top/third_party"
mkdir -p "$out/debs" "$tp"

# shellcheck source=tools/apt.sh
. "$top/tools/apt.sh"
apt_install_missing peer "${PACKAGES[@]}"
export PATH="$PATH:/sbin:/usr/sbin"

# --- kernel and busybox: binary packages, verified by apt against the signed
# archive index; the versions are pinned so every run measures the same peer.
stamp="$out/kroot.stamp"
want="$KERNEL_ABI $KERNEL_DEB_VERSION"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	(cd "$out/debs" && apt-get download -q "linux-image-$KERNEL_ABI=$KERNEL_DEB_VERSION" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	deb=$(ls "$out"/debs/linux-image-"$KERNEL_ABI"_*.deb | head -n 1)
	rm -rf "$out/kroot"
	dpkg-deb -x "$deb" "$out/kroot"
	# The .deb ships no modules.dep.
	depmod -b "$out/kroot" "$KERNEL_ABI"
	cp "$out/kroot/boot/vmlinuz-$KERNEL_ABI" "$out/vmlinuz"
	echo "$want" > "$stamp"
	echo "peer: kernel $KERNEL_ABI ($KERNEL_DEB_VERSION) unpacked"
fi

stamp="$out/busybox.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$BUSYBOX_VERSION" ]; then
	(cd "$out/debs" && apt-get download -q "busybox-static=$BUSYBOX_VERSION" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	rm -rf "$out/bbroot"
	dpkg-deb -x "$(ls "$out"/debs/busybox-static_*.deb | head -n 1)" "$out/bbroot"
	echo "$BUSYBOX_VERSION" > "$stamp"
fi

# --- fio: source package, pinned and checksummed, built static.
stamp="$tp/fio.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$FIO_VERSION" ] || [ ! -x "$tp/fio/fio" ]; then
	work=$(mktemp -d)
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt-get source --download-only -q "fio=$FIO_VERSION" >/dev/null 2>&1)
	orig=$(ls "$work"/fio_*.orig.tar.* | grep -v '\.asc$' | head -n 1)
	sum=$(sha256sum "$orig" | cut -d' ' -f1)
	if [ "$sum" != "$FIO_ORIG_SHA256" ]; then
		echo "peer: fio source checksum mismatch: got $sum, want $FIO_ORIG_SHA256" >&2
		exit 1
	fi
	(cd "$work" && dpkg-source -q -x fio_*.dsc fio >/dev/null 2>&1)
	rm -rf "$tp/fio"
	mv "$work/fio" "$tp/fio"
	echo "peer: building fio $FIO_VERSION (static)"
	(cd "$tp/fio" && ./configure --build-static --disable-numa --disable-rdma \
		--disable-gfapi --disable-pmem --disable-native >"$out/fio-configure.log" 2>&1 &&
		make -j"$(nproc)" fio >"$out/fio-build.log" 2>&1) ||
		{ echo "peer: fio build failed: see $out/fio-configure.log and fio-build.log" >&2; exit 1; }
	grep -qi "^Linux AIO support *yes" "$out/fio-configure.log" ||
		echo "peer: warning: fio configured without libaio (see fio-configure.log)" >&2
	echo "$FIO_VERSION" > "$stamp"
fi

# --- the static part of the initramfs: a directory tree peer.py packs
# together with its generated /init.
root="$out/initroot"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,modules}
cp "$out/bbroot/bin/busybox" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
strip -o "$root/bin/fio" "$tp/fio/fio"
# Load order from the host's modprobe over the unpacked tree: each line is
# "insmod /lib/modules/.../x.ko"; builtins are skipped.
: > "$root/modules/order"
# (One module per call: further arguments would be taken as its parameters.)
for m in "${MODULES[@]}"; do
	modprobe -d "$out/kroot" -S "$KERNEL_ABI" --show-depends "$m"
done | awk '$1 == "insmod" { print $2 }' | while read -r ko; do
		name=$(basename "$ko")
		grep -qx "$name" "$root/modules/order" && continue
		# modprobe -d prints paths with the base directory already in them.
		case "$ko" in
		*.xz) xz -dc "$ko" > "$root/modules/${name%.xz}"; name=${name%.xz} ;;
		*) cp "$ko" "$root/modules/$name" ;;
		esac
		echo "$name" >> "$root/modules/order"
	done
echo "peer: ready: $out/vmlinuz, $root ($(wc -l < "$root/modules/order") modules, fio $FIO_VERSION)"
