#!/usr/bin/env bash
# Build the Linux peer for `make bench-peer` into build/peer/:
#   vmlinuz            stock Debian kernel (linux-image-<abi>-amd64, the one
#                      linux-image-amd64 depends on now; versions.txt)
#   initramfs.cpio.gz  busybox-static + fio (static, from Debian's source
#                      package, pinned and checksummed) + the nvme/ahci
#                      modules and their dependencies, in load order; for
#                      the filesystem table also ext4, XFS and btrfs (the
#                      kernel's modules) with mkfs.ext4/mkfs.xfs/mkfs.btrfs
#                      and their shared libraries, from the host's Debian
#                      packages e2fsprogs, xfsprogs, btrfs-progs (tools/deps.sh);
#                      for the network table the virtio-net and e1000e
#                      modules and iperf (iperf2, the host's Debian package)
#                      with its shared libraries; for the file protocol
#                      table the nfsd module and rpcbind, rpc.nfsd,
#                      rpc.mountd, exportfs from Debian's rpcbind and
#                      nfs-kernel-server packages (downloaded, not
#                      installed on the host) with their shared libraries
# The /init script is generated per run by tools/peer/peer.py (it carries the
# workload list), so only the static part is built here.
#
# Idempotent: each step is skipped when its output exists and its stamp
# matches the pinned version.  Needs root (or sudo) only to install missing
# host packages.
set -euo pipefail

# The kernel and busybox are what the archive has now: Debian replaces a
# kernel ABI package (linux-image-6.1.0-N-amd64) when a newer one lands and
# later drops the old one, so a pinned version stops downloading.  The
# versions used are recorded in build/peer/versions.txt and in the results.
# PEER_KERNEL_ABI=6.1.0-56-amd64 PEER_KERNEL_VERSION=6.1.192-2 repeats an
# older measurement while the archive still has it.
FIO_VERSION="3.33-3"
FIO_ORIG_SHA256="d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc"
# Host tools: kmod for depmod/modprobe --show-depends, cpio for the archive,
# libaio-dev for fio's static libaio engine, gnuplot-nox for the chart.
PACKAGES=(kmod cpio libaio-dev gnuplot-nox dpkg-dev gcc make zlib1g-dev)
# Modules the peer loads, by name; their dependencies are resolved on the host.
# crc32c_generic: ext4, XFS and btrfs ask the crypto API for crc32c at mount
# time (request_module, not a symbol dependency modprobe would see).
# virtio_pci: the transport virtio_net needs (not a symbol dependency).
# nfsd: Linux's NFS server (sunrpc, lockd and the rest come as dependencies).
MODULES=(nvme ahci sd_mod crc32c_generic ext4 xfs btrfs virtio_pci virtio_net e1000e nfsd)
# The tools the peer runs, from the host's Debian packages (same release as
# the peer's kernel): binary, and the package it comes from.  mkfs for the
# filesystem table, iperf (iperf2) for the network table.
PEER_TOOLS=(/sbin/mkfs.ext4:e2fsprogs /sbin/mkfs.xfs:xfsprogs /sbin/mkfs.btrfs:btrfs-progs /usr/bin/iperf:iperf)

top=$(cd "$(dirname "$0")/../.." && pwd)
out="$top/build/peer"
tp="$top/third_party"
mkdir -p "$out/debs" "$tp"

# shellcheck source=tools/apt.sh
. "$top/tools/apt.sh"
apt_install_missing peer "${PACKAGES[@]}"
export PATH="$PATH:/sbin:/usr/sbin"

# candidate PACKAGE: the version apt would install now (empty if none).
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# download PACKAGE VERSION: apt-get download into debs/, failing loudly;
# prints the .deb's path (apt writes an epoch's ':' as %3a).
download() {
	local deb="$out/debs/${1}_${2/:/%3a}_amd64.deb"
	(cd "$out/debs" && apt_quiet peer "apt-get download $1=$2" apt-get download -q "$1=$2") || exit 1
	[ -f "$deb" ] || { echo "peer: apt-get download left no $deb" >&2; exit 1; }
	echo "$deb"
}

# --- kernel and busybox: binary packages, verified by apt against the signed
# archive index.
KERNEL_ABI=${PEER_KERNEL_ABI:-$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { sub("^linux-image-", "", $2); print $2; exit }')}
if [ -z "$KERNEL_ABI" ]; then
	echo "peer: cannot resolve the kernel: apt-cache knows no linux-image-amd64 (apt-get update?)" >&2
	exit 1
fi
KERNEL_DEB_VERSION=${PEER_KERNEL_VERSION:-$(candidate "linux-image-$KERNEL_ABI")}
BUSYBOX_VERSION=${PEER_BUSYBOX_VERSION:-$(candidate busybox-static)}
if [ -z "$KERNEL_DEB_VERSION" ] || [ -z "$BUSYBOX_VERSION" ]; then
	echo "peer: the archive has no linux-image-$KERNEL_ABI or busybox-static version to download" >&2
	exit 1
fi
echo "peer: kernel linux-image-$KERNEL_ABI $KERNEL_DEB_VERSION, busybox-static $BUSYBOX_VERSION, fio $FIO_VERSION"

stamp="$out/kroot.stamp"
want="$KERNEL_ABI $KERNEL_DEB_VERSION"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	deb=$(download "linux-image-$KERNEL_ABI" "$KERNEL_DEB_VERSION")
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
	deb=$(download busybox-static "$BUSYBOX_VERSION")
	rm -rf "$out/bbroot"
	dpkg-deb -x "$deb" "$out/bbroot"
	echo "$BUSYBOX_VERSION" > "$stamp"
fi

# --- fio: source package, pinned and checksummed, built static.
stamp="$tp/fio.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$FIO_VERSION" ] || [ ! -x "$tp/fio/fio" ]; then
	work=$(mktemp -d)
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt_quiet peer "apt-get source fio" apt-get source --download-only -q "fio=$FIO_VERSION")
	orig=$(ls "$work"/fio_*.orig.tar.* | grep -v '\.asc$' | head -n 1)
	sum=$(sha256sum "$orig" | cut -d' ' -f1)
	if [ "$sum" != "$FIO_ORIG_SHA256" ]; then
		echo "peer: fio source checksum mismatch: got $sum, want $FIO_ORIG_SHA256" >&2
		exit 1
	fi
	(cd "$work" && apt_quiet peer "unpacking fio" dpkg-source -x fio_*.dsc fio)
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

# --- mkfs tools and iperf with the shared libraries they load (their ELF
# loader too): busybox is static, so these bring their own /lib64 and /lib.
tool_versions=
for spec in "${PEER_TOOLS[@]}"; do
	bin=${spec%%:*} pkg=${spec#*:}
	ver=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null) || ver=
	if [ -z "$ver" ] || [ ! -x "$bin" ]; then
		echo "peer: $bin ($pkg) is not installed: run make deps (tools/deps.sh)" >&2
		exit 1
	fi
	tool_versions="$tool_versions, $pkg $ver"
	cp -L "$bin" "$root/sbin/"
	# ldd lines: "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" and
	# the loader "/lib64/ld-linux-x86-64.so.2 (0x...)".
	ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
done
# mke2fs reads its feature defaults from here (the package's file).
mkdir -p "$root/etc"
cp /etc/mke2fs.conf "$root/etc/mke2fs.conf"

# --- the NFS server's user space: binary packages of the archive (the
# versions apt would install now), unpacked here rather than installed on
# the host, whose libraries (same release) they load.
# copy_with_libs BIN: BIN into sbin/ with its shared libraries.
copy_with_libs() {
	cp -L "$1" "$root/sbin/"
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $2 == "=>" && $3 == "not" { print "MISSING " $1 }
		$1 ~ /^\// { print $1 }' |
		while read -r lib name; do
			if [ "$lib" = MISSING ]; then
				echo "peer: $1 needs $name, which the host does not have" >&2
				exit 1
			fi
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
}
nfs_versions=
rm -rf "$out/nfsroot"
for pkg in rpcbind nfs-kernel-server; do
	ver=$(candidate "$pkg")
	[ -n "$ver" ] || { echo "peer: the archive has no $pkg to download" >&2; exit 1; }
	dpkg-deb -x "$(download "$pkg" "$ver")" "$out/nfsroot"
	nfs_versions="$nfs_versions, $pkg $ver"
done
for bin in sbin/rpcbind usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs; do
	copy_with_libs "$out/nfsroot/$bin"
done
# libtirpc's transports; service and protocol names (rpcbind binds
# "sunrpc"); users for rpcbind (it runs as _rpc); /var/run, where the
# kernel looks for rpcbind's socket to register nfsd.
cp /etc/netconfig /etc/services /etc/protocols "$root/etc/"
mkdir -p "$root/run" "$root/var"
ln -sfn ../run "$root/var/run"
printf 'root:x:0:0:root:/:/bin/sh\n_rpc:x:100:65534::/run/rpcbind:/bin/false\nnobody:x:65534:65534::/:/bin/false\n' \
	> "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tool_versions="$tool_versions$nfs_versions"
printf 'kernel linux-image-%s %s, busybox-static %s, fio %s (source, sha256 pinned)%s\n' \
	"$KERNEL_ABI" "$KERNEL_DEB_VERSION" "$BUSYBOX_VERSION" "$FIO_VERSION" "$tool_versions" > "$out/versions.txt"
echo "peer: ready: $out/vmlinuz, $root ($(wc -l < "$root/modules/order") modules, fio $FIO_VERSION)"
