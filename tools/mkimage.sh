#!/usr/bin/env bash
# mkimage.sh ESPDIR IMG: a 64 MiB GPT disk image for a USB stick whose only
# partition is a FAT32 EFI System Partition holding a copy of ESPDIR.
# Needs no root: sgdisk writes the GPT, mtools formats and fills the
# partition through an offset ("IMG@@1M").
set -euo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ]; then
	echo "usage: $0 ESPDIR IMG" >&2
	exit 2
fi
esp=$1
img=$2
size_mib=64
first_lba=2048                 # 1 MiB: the alignment every tool expects
sector=512

for tool in sgdisk mformat mcopy mdir; do
	command -v "$tool" >/dev/null || { echo "mkimage: $tool not found (run make deps)" >&2; exit 1; }
done
if [ ! -f "$esp/EFI/BOOT/BOOTX64.EFI" ]; then
	echo "mkimage: $esp has no EFI/BOOT/BOOTX64.EFI: not an ESP tree" >&2
	exit 1
fi

# Build next to the target and rename at the end so a failed run never
# leaves a half-written image that looks valid.
tmp="$img.tmp"
trap 'rm -f "$tmp"' EXIT
rm -f "$tmp"
truncate -s "${size_mib}M" "$tmp"

sgdisk --clear -n "1:$first_lba:0" -t 1:ef00 -c "1:APPLIANCE ESP" "$tmp" >/dev/null

# The partition ends before the backup GPT (33 sectors at the end); ask
# sgdisk rather than repeat its arithmetic.
last_lba=$(sgdisk -i 1 "$tmp" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
if [ -z "$last_lba" ]; then
	echo "mkimage: cannot read partition 1 bounds back from sgdisk" >&2
	exit 1
fi
part_sectors=$((last_lba - first_lba + 1))

# FAT32 needs at least 65525 clusters or firmware treats it as FAT16:
# 512-byte clusters give ~129000 on this partition.
clusters=$((part_sectors))   # upper bound; FATs take ~1.5%
if [ "$clusters" -lt 65525 ]; then
	echo "mkimage: partition too small for FAT32 ($clusters clusters)" >&2
	exit 1
fi
export MTOOLS_SKIP_CHECK=1
part="$tmp@@$((first_lba * sector))"
mformat -i "$part" -F -c 1 -T "$part_sectors" -h 64 -s 32 -H "$first_lba" -v APPLIANCE ::
mcopy -s -Q -i "$part" "$esp"/* ::/
# Reading the tree back proves the filesystem is usable, not just written.
mdir -i "$part" ::/EFI/BOOT/BOOTX64.EFI >/dev/null

mv -f "$tmp" "$img"
trap - EXIT
echo "mkimage: $img: ${size_mib} MiB GPT, ESP FAT32 at LBA $first_lba, $part_sectors sectors"
