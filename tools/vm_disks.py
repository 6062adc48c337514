"""qemu disk options for tools/vm.py: NVMe controllers with several
namespaces and LBA sizes, AHCI disks on chosen ICH9 ports, empty ATAPI
drives, blkdebug error injection and I/O throttling (Python 3 stdlib only).
"""
import os
import subprocess
import sys


def vm_disk_args(kind, path, index=0):
    """qemu arguments attaching the raw disk `path` as NVMe or AHCI (SATA)."""
    if kind == "nvme":
        drive = f"nvm{index}"
        return ["-drive", f"if=none,id={drive},file={path},format=raw",
                "-device", f"nvme,serial=nvme{index},drive={drive}"]
    if kind == "sata":
        # q35's ICH9 AHCI controller has six ports, ide.0 .. ide.5.
        drive = f"sata{index}"
        return ["-drive", f"if=none,id={drive},file={path},format=raw",
                "-device", f"ide-hd,drive={drive},bus=ide.{index}"]
    raise ValueError(f"unknown disk kind {kind!r} (nvme or sata)")


# -- disk specifications ------------------------------------------------------
#
# A disk spec is one of
#   "nvme" / "sata"             (Machine.start only) a fresh 64 MiB scratch disk
#   (kind, path)                the historical form, see vm_disk_args()
#   a dict:
#     {"kind": "nvme", "ns": [NS, ...], "serial": "nvme0", "opts": "mdts=5"}
#         one NVMe controller; NS dicts have "path", "size", "lba" (512 or
#         4096), "nsid" (default: position + 1) and the drive keys below.
#         Without "ns" the controller has one namespace from the dict's own
#         "path"/"size"/"lba"/drive keys.
#     {"kind": "sata", "path": P, "size": "64M", "port": N, "serial": "..."}
#         an AHCI (ICH9) disk on port N (default: the next free port)
#     {"kind": "cdrom", "port": N}   an empty ATAPI drive (ide-cd)
#   drive keys (any disk or namespace):
#     "blkdebug": CONF  wrap the image in qemu's blkdebug with that rules file;
#                       rerror/werror then default to "report"
#     "logwrites": LOG  record every write, discard and flush in LOG with
#                       qemu's blklogwrites (dm-log-writes format, 512-byte
#                       log sectors; tools/dmlog.py reads it); Machine.start
#                       empties LOG first
#     "rerror"/"werror" qemu error policy (report, ignore, stop, enospc)
#     "throttle": {"iops-total": 2, ...}   qemu I/O throttling
#     "id": qemu drive id (default nvme<C>n<NSID> for NVMe, sata-p<PORT> for
#           AHCI; the QMP name for block_set_io_throttle / query-blockstats)
#     "fresh": True     recreate the file (Machine.start: default for files it
#                       names itself; False keeps an existing image)
AHCI_PORTS = 6     # q35's ICH9 AHCI: ide.0 .. ide.5


def vm_drive_opt(drive_id, path, spec):
    """The -drive value for one image with spec's drive keys."""
    parts = [f"if=none,id={drive_id},format=raw"]
    if spec.get("logwrites"):
        if spec.get("blkdebug"):
            raise ValueError("logwrites and blkdebug cannot be combined")
        parts = [f"if=none,id={drive_id},driver=blklogwrites,file.driver=file,"
                 f"file.filename={path},log.driver=file,log.filename={spec['logwrites']},"
                 "log-sector-size=512"]
    elif spec.get("blkdebug"):
        parts.append(f"file.driver=blkdebug,file.config={spec['blkdebug']},"
                     f"file.image.filename={path}")
    else:
        parts.append(f"file={path}")
    rerror = spec.get("rerror", "report" if spec.get("blkdebug") else None)
    werror = spec.get("werror", "report" if spec.get("blkdebug") else None)
    if rerror:
        parts.append(f"rerror={rerror}")
    if werror:
        parts.append(f"werror={werror}")
    if spec.get("cache"):
        parts.append(f"cache={spec['cache']}")
    for k, v in (spec.get("throttle") or {}).items():
        parts.append(f"throttling.{k}={v}")
    return ",".join(parts)


def vm_disks_args(disks):
    """qemu arguments for a list of disk specs (tuples or dicts, see above;
    paths must already exist).  Returns (args, table), table being one dict
    per image: kind, name (the guest's expected device name), drive (qemu
    drive id), path, lba."""
    args, table = [], []
    counts = {}
    used_ports = {d.get("port") for d in disks if isinstance(d, dict) and d.get("port") is not None}
    next_port = 0
    nvme_index = 0
    sata_index = 0

    def take_port(d):
        nonlocal next_port
        if d.get("port") is not None:
            return d["port"]
        while next_port in used_ports:
            next_port += 1
        if next_port >= AHCI_PORTS:
            raise ValueError("more AHCI devices than the ICH9's six ports")
        used_ports.add(next_port)
        return next_port

    for d in disks:
        if isinstance(d, tuple):
            kind, path = d
            i = counts.get(kind, 0)
            counts[kind] = i + 1
            args += vm_disk_args(kind, path, i)
            if kind == "nvme":
                table.append(dict(kind="nvme", name=f"nvme{nvme_index}n1", drive=f"nvm{i}",
                                  path=path, lba=512))
                nvme_index += 1
            else:
                used_ports.add(i)
                table.append(dict(kind="sata", name=f"sata{sata_index}", drive=f"sata{i}",
                                  path=path, lba=512, port=i))
                sata_index += 1
            continue
        kind = d["kind"]
        if kind == "nvme":
            c = nvme_index
            nvme_index += 1
            ctrl = f"nvme{c}"
            dev = f"nvme,id={ctrl},serial={d.get('serial', ctrl)}"
            if d.get("opts"):
                dev += "," + d["opts"]
            args += ["-device", dev]
            for pos, ns in enumerate(d.get("ns") or [d]):
                nsid = ns.get("nsid", pos + 1)
                lba = ns.get("lba", 512)
                drive = ns.get("id", f"{ctrl}n{nsid}")
                args += ["-drive", vm_drive_opt(drive, ns["path"], ns),
                         "-device", f"nvme-ns,drive={drive},bus={ctrl},nsid={nsid},"
                                    f"logical_block_size={lba},physical_block_size={lba}"]
                table.append(dict(kind="nvme", name=f"{ctrl}n{nsid}", drive=drive,
                                  path=ns["path"], lba=lba))
        elif kind == "sata":
            port = take_port(d)
            drive = d.get("id", f"sata-p{port}")
            dev = f"ide-hd,drive={drive},bus=ide.{port}"
            if d.get("serial"):
                dev += f",serial={d['serial']}"
            if d.get("opts"):
                dev += "," + d["opts"]
            args += ["-drive", vm_drive_opt(drive, d["path"], d), "-device", dev]
            table.append(dict(kind="sata", name=f"sata{sata_index}", drive=drive,
                              path=d["path"], lba=512, port=port))
            sata_index += 1
        elif kind == "cdrom":
            port = take_port(d)
            args += ["-device", f"ide-cd,bus=ide.{port}"]
            table.append(dict(kind="cdrom", name=None, drive=None, path=None, lba=2048,
                              port=port))
        else:
            raise ValueError(f"unknown disk kind {kind!r} (nvme, sata or cdrom)")
    return args, table


def vm_disks_prepare(disks, tmp_dir):
    """Give every image of a disk spec list a file: strings become fresh
    64 MiB scratch disks in tmp_dir, dicts without "path" get one there
    (fresh unless "fresh" is False), files are created with their "size"
    (default 64M).  Returns the list with paths filled in (dicts copied)."""
    out = []
    for i, d in enumerate(disks):
        if isinstance(d, str):
            path = os.path.join(tmp_dir, f"disk{i}-{d}.img")
            if os.path.exists(path):
                os.remove(path)
            out.append((d, vm_ensure_disk(path, "64M")))
            continue
        if isinstance(d, tuple):
            out.append(d)
            continue
        d = dict(d)
        images = [d]
        if d["kind"] == "nvme" and d.get("ns"):
            d["ns"] = [dict(ns) for ns in d["ns"]]
            images = d["ns"]
        if d["kind"] != "cdrom":
            for j, img in enumerate(images):
                if not img.get("path"):
                    img["path"] = os.path.join(tmp_dir, f"disk{i}-{d['kind']}-{j}.img")
                    fresh = img.get("fresh", True)
                else:
                    fresh = img.get("fresh", False)
                if fresh and os.path.exists(img["path"]):
                    os.remove(img["path"])
                vm_ensure_disk(img["path"], img.get("size", "64M"))
                if img.get("logwrites"):
                    open(img["logwrites"], "wb").close()
        out.append(d)
    return out


def vm_disk_parse(text):
    """--disk SPEC -> a spec dict ("kind,key=val,..."; file= is the path,
    iops=/bps= throttle, lba=/port=/nsid= numbers)."""
    kind, _, rest = text.partition(",")
    d = {"kind": kind}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        if k == "file":
            d["path"] = os.path.abspath(v)
        elif k in ("lba", "port", "nsid"):
            d[k] = int(v)
        elif k in ("iops", "bps"):
            d.setdefault("throttle", {})[f"{k}-total"] = int(v)
        elif k == "blkdebug":
            d[k] = os.path.abspath(v)
        else:
            d[k] = v
    return d


def vm_ensure_disk(path, size="1G", announce=False):
    """Create a sparse raw disk on first use; existing contents are kept.
    announce: say so on stderr (interactive runs: the user's first run
    should not create files silently)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        subprocess.run(["truncate", "-s", size, path], check=True)
        if announce:
            print(f"vm.py: created {path} ({size} sparse file, empty)", file=sys.stderr)
    return path
