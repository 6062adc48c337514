#!/usr/bin/env python3
"""Mutation check of the portable core: each mutation below is a one-line
change that breaks one numbered requirement (docs/iomap-requirements.md:
COW-n, DIO-n / DIO-Tn, EXT-n) or one rule of the file protocol
(docs/protocol.md, by section).  Each is applied to a scratch copy of the
tree (build/mutate/src, never the working tree), the host tests named for it
are built there and run, and the mutation must make at least one of them
fail (a "not ok" line, a crash or a non-zero exit; a test still running
after the time limit counts as a failure too and is marked "timeout").

  tools/mutate.py [-k SUBSTRING] [--list] [--keep]

Prints a table and exits 1 if any mutation survives, if an unmutated test
fails first (the baseline), or if a mutation no longer applies (its line
changed: update the list).  `make mutate` runs it; `make stress` too.
Python 3 stdlib only.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "build", "mutate")
SRC = os.path.join(WORK, "src")
TEST_TIMEOUT = 120

# (id, requirement, file, original line fragment, mutated fragment, tests);
# "pcache LRU" is the page cache's own rule (pcache/pagecache.c), not a numbered one.
# The fragment must occur exactly once in the file.
MUTATIONS = [
    # cowfs scrub of file data (fs/scrub_data.c).
    ("scrub-data-not-walked", "cowfs scrub", "fs/scrub.c",
     "\t\t\tscrub_data_leaf(s, owner, b);",
     "\t\t\t(void)0; /* mutated: data not scrubbed */",
     ["test_cowfs_scrub", "test_cowfs_tool"]),
    ("scrub-shared-block-read-again", "cowfs scrub", "fs/scrub_data.c",
     "if (scrub_seen(s, first + j))",
     "if (scrub_seen(s, first + j) && 0)",
     ["test_cowfs_scrub"]),
    ("scrub-one-read-per-block", "cowfs scrub", "fs/scrub_data.c",
     "if (r->n && (blk != r->dev + r->n || r->n == SCRUB_RUN_BLOCKS))",
     "if (r->n)",
     ["test_cowfs_scrub", "test_cowfs_tool"]),
    ("scrub-unwritten-read", "cowfs scrub", "fs/scrub_data.c",
     "if (cfs_get32(d + 12) & CFS_EXTENT_UNWRITTEN) {",
     "if (0) {",
     ["test_cowfs_scrub"]),
    ("scrub-checksum-not-compared", "cowfs scrub", "fs/scrub_data.c",
     "} else if (crc32c(0, b, BS) != r->csum[i]) {",
     "} else if (0) {",
     ["test_cowfs_scrub", "test_cowfs_tool"]),
    ("scrub-progress-without-data", "cowfs scrub", "fs/scrub.c",
     "progress(arg, st->nodes + st->data_blocks, s.total);",
     "progress(arg, st->nodes, s.total);",
     ["test_cowfs_scrub"]),
    ("scrub-tool-exit-0-on-damage", "cowfs scrub", "tools/cowfs_tool.c",
     "return cowfs_scrub_errors(&st) ? EXIT_UNCORRECTED : 0;",
     "return 0; /* mutated: damage not in the exit status */",
     ["test_cowfs_tool"]),
    # cowfs's fsync intent log (docs/format.md §9).
    ("fslog-logged-block-reused", "format §9", "fs/alloc.c",
     "bool at_once = born == fs->gen && !fs->log_n;",
     "bool at_once = born == fs->gen;",
     ["test_cowfs_fsynclog"]),
    ("fslog-no-flush-after-log", "format §9", "fs/log.c",
     "return err ? err : cowfs_flush(fs);",
     "return err; /* mutated: no flush */",
     ["test_cowfs_fsynclog"]),
    ("fslog-replay-trusts-data", "format §9", "fs/log.c",
     "if (err || crc32c(0, c->buf, BS) != want) {",
     "if ((err || crc32c(0, c->buf, BS) != want) && 0) { /* mutated: data not checked */",
     ["test_cowfs_fsynclog"]),
    ("fslog-partial-fsync-replayed", "format §9", "fs/log.c",
     "if (cfs_get16(w->buf + (uint64_t)i * BS + CFS_LH_FLAGS) & CFS_LOG_END)",
     "if (1)",
     ["test_cowfs_fsynclog"]),
    ("fslog-replay-leaves-log-blocks-free", "format §9", "fs/log.c",
     "\t\t(void)cowfs_alloc_take(fs, w->blk[i]);\n",
     "\t\t/* mutated: not taken */\n",
     ["test_cowfs_fsynclog"]),
    ("fslog-empty-log-appended", "format §9", "fs/log.c",
     "\t\tgoto out;                 /* empty: not appended to",
     "\t\t{ if (!cowfs_alloc_take(fs, fs->log_start)) fs->log_next = fs->log_start; goto out; }    /*",
     ["test_cowfs_fsynclog"]),

    ("dio-drain-returns-at-once", "DIO-8", "iomap/direct_io.c",
     "return plat_wait_until(inode->dio_wq, iomap_dio_idle, inode, deadline);",
     "return iomap_dio_idle(inode) ? 0 : (int)(deadline & 0);",
     ["test_iomap_dio", "test_iomap_dio_race"]),
    ("validator-no-device-rule", "COW-9", "iomap/iter.c",
     "(m->addr == IOMAP_NULL_ADDR || !m->bdev))",
     "(m->addr == IOMAP_NULL_ADDR))",
     ["test_iomap_iter"]),
    ("dio-wait-does-not-poll", "COW-31", "iomap/direct_io.c",
     "plat_wait_owned(dio->wq, iomap_dio_done_cond, dio, dio->bdev,",
     "plat_wait_owned(dio->wq, iomap_dio_done_cond, dio, NULL,",
     ["test_iomap_dio"]),
    ("dio-bio-error-ignored", "COW-32", "iomap/direct_io.c",
     "\tif (bio->status)\n",
     "\tif (bio->status && bio->len == 0)\n",
     ["test_iomap_dio"]),
    ("dio-bio-cap-1g", "COW-34", "iomap/direct_io.c",
     "#define IOMAP_DIO_MAX_BIO (1ull << 20)",
     "#define IOMAP_DIO_MAX_BIO (1ull << 30)",
     ["test_iomap_dio"]),
    ("ioend-cap-1g", "COW-34", "iomap/writeback.c",
     "#define IOMAP_IOEND_MAX (8ull << 20)",
     "#define IOMAP_IOEND_MAX (1ull << 30)",
     ["test_iomap_writeback"]),
    ("dsync-fua-on-allocating-write", "DIO-14", "iomap/direct_io.c",
     "if ((dio->flags & IOMAP_DIO_DSYNC) && pure)",
     "if ((dio->flags & IOMAP_DIO_DSYNC) && !pure)",
     ["test_iomap_dio", "test_iomap_crash"]),
    ("disk-size-past-isize", "EXT-29", "iomap/writeback.c",
     "uint64_t new_disk = iomap_min(first->pos + len, iomap_isize(inode));",
     "uint64_t new_disk = first->pos + len;",
     ["test_iomap_writeback"]),
    ("disk-size-raised-on-error", "EXT-30", "iomap/writeback.c",
     "\t\t\tif (!err && !ret)\n\t\t\t\tiomap_raise(&inode->disk_size, new_disk);",
     "\t\t\tif (!ret)\n\t\t\t\tiomap_raise(&inode->disk_size, new_disk);",
     ["test_iomap_writeback"]),
    ("dio-no-writeback-first", "COW-21", "iomap/direct_io.c",
     "int ret = iomap_writepages(inode, pos, pos + len, true, NULL);",
     "int ret = 0;",
     ["test_iomap_dio"]),
    ("dio-isize-not-monotonic", "COW-28", "iomap/direct_io.c",
     "iomap_raise(&inode->size, dio->pos + (uint64_t)ret);",
     "plat_store(&inode->size, dio->pos + (uint64_t)ret);",
     ["test_iomap_dio", "test_iomap_dio_race"]),
    ("dsync-allocating-not-flushed", "DIO-18", "iomap/direct_io.c",
     "\t\tdio->need_sync = true;",
     "\t\tdio->need_sync = false;",
     ["test_iomap_dio", "test_iomap_crash"]),
    ("stale-mapping-not-checked", "DIO-33", "iomap/buffered_io.c",
     "if (fops && fops->iomap_valid && !fops->iomap_valid(it->inode, &it->iomap)) {",
     "if (fops && fops->iomap_valid && 0) {",
     ["test_iomap_buffered"]),
    ("new-block-not-zeroed", "EXT-20", "iomap/buffered_io.c",
     "if (b >= isize || (no_source && (it->iomap.flags & IOMAP_F_NEW)) ||",
     "if (b >= isize || (no_source && (it->iomap.flags & IOMAP_F_NEW & 0)) ||",
     ["test_iomap_buffered"]),
    ("unwritten-read-from-disk", "EXT-32", "iomap/readpage.c",
     "if (b >= eof || map->type == IOMAP_HOLE || map->type == IOMAP_UNWRITTEN ||",
     "if (b >= eof || map->type == IOMAP_HOLE ||",
     ["test_iomap_buffered", "test_iomap_stress"]),
    ("ioends-not-merged-at-completion", "EXT-28", "iomap/writeback.c",
     "while (last->next && iomap_ioend_can_merge(last, last->next)) {",
     "while (last->next && iomap_ioend_can_merge(last, last->next) && 0) {",
     ["test_iomap_writeback"]),
    ("no-dirty-throttle", "COW-20", "pcache/pagecache.c",
     "\tif (d <= pc->cfg.dirty_limit_bytes)\n\t\treturn;",
     "\tif (d <= pc->cfg.dirty_limit_bytes || 1)\n\t\treturn;",
     ["test_iomap_pcache", "test_iomap_writeback"]),
    ("lru-no-second-chance", "pcache LRU", "pcache/pagecache.c",
     "\t\tif (fl & FOLIO_REFERENCED) {\n",
     "\t\tif (fl & FOLIO_REFERENCED & 0) {\n",
     ["test_iomap_pcache"]),
    # The file protocol (proto/, docs/protocol.md): the checks every byte from
    # the network passes (`tools/mutate.py -k proto-` runs only these).
    ("file-truncate-keeps-run-blocks", "cowfs truncate", "fs/file.c",
     "\tinflight_drop(vn, start, end);\n",
     "\t;\n",
     ["test_cowfs_file", "test_cowfs_falloc"]),
    ("file-writeback-takes-over-inflight", "cowfs writeback", "fs/file.c",
     "if (vn->fd->inflight.r[i].start > start && vn->fd->inflight.r[i].start < stop)",
     "if (0 && vn->fd->inflight.r[i].start > start && vn->fd->inflight.r[i].start < stop)",
     ["test_cowfs_falloc"]),
    ("falloc-punch-keeps-extents", "cowfs punch hole", "fs/falloc.c",
     "err = cowfs_extent_punch(m, vn, s, e);",
     "err = 0 * (int)e;",
     ["test_cowfs_falloc"]),
    ("falloc-carried-size-lost", "cowfs punch hole", "fs/falloc.c",
     "if (!err && whole && carried > vn->rec.size) {",
     "if (!err && whole && carried > vn->rec.size && 0) {",
     ["test_cowfs_falloc"]),
    ("falloc-no-space-check", "cowfs fallocate", "fs/falloc.c",
     "err = cowfs_file_room(m, need);",
     "err = 0 * (int)need;",
     ["test_cowfs_falloc"]),
    ("seek-pending-is-hole", "cowfs seek data", "fs/falloc.c",
     ".bdev = vn->m->bdev, .type = IOMAP_DELALLOC };",
     ".bdev = vn->m->bdev, .type = IOMAP_HOLE };",
     ["test_cowfs_falloc"]),
    ("fslog-xattr-change-logged", "cowfs fsync of extended attributes", "fs/xattr.c",
     "\tvn->nolog_gen = m->fs->gen;\n",
     "\t;\n",
     ["test_cowfs_fsynclog"]),
    ("dio-xform-unverified", "checksums on direct reads (COW-35)", "iomap/direct_io.c",
     "\tfor (unsigned i = 0; i < dio->nverify && ret >= 0; i++) {",
     "\tfor (unsigned i = 0; i < dio->nverify && ret >= 0 && !dio; i++) {",
     ["test_cowfs_file"]),
    ("proto-fs-generation-ignored", "protocol §4 stale handles", "proto/serve_cowfs.c",
     "if (err == -PLAT_ENOENT || (!err && (uint32_t)in->gen != fh->gen))",
     "if (err == -PLAT_ENOENT)",
     ["test_apfp_serve"]),
    ("proto-fs-cookie-verifier-ignored", "protocol §5 readdir cookies", "proto/serve_cowfs_meta.c",
     "if (q->cookie && plat_memcmp(q->verf.b, r->verf.b, PROTO_VERF_SIZE))",
     "if (0 && q->cookie && plat_memcmp(q->verf.b, r->verf.b, PROTO_VERF_SIZE))",
     ["test_apfp_serve"]),
    ("proto-fs-mknod-rdev-not-sent", "protocol §5.1 attr device numbers", "proto/serve_cowfs.c",
     ".rdev_major = dev ? rdev_major(in->rdev) : 0, .rdev_minor = dev ? rdev_minor(in->rdev) : 0,",
     ".rdev_major = 0 & rdev_major(in->rdev), .rdev_minor = dev ? rdev_minor(in->rdev) : 0,",
     ["test_apfp_serve_special"]),
    ("proto-fs-mknod-devices-for-anyone", "protocol §5.3 MKNOD's device rule", "proto/serve_cowfs.c",
     "return dev && c->uid != 0 ? -PLAT_EPERM : 0;",
     "return dev && c->uid != 0 && 0 ? -PLAT_EPERM : 0;",
     ["test_apfp_serve_special"]),
    ("proto-fs-read-reply-overflows", "protocol §7 reply bounds", "proto/serve_cowfs.c",
     "uint64_t room = c->scratch_cap > READ_FIXED ? c->scratch_cap - READ_FIXED : 0;",
     "uint64_t room = c->scratch_cap;",
     ["test_proto_cowfs_fuzz"]),
    ("proto-name-slash-accepted", "protocol §4 names", "proto/codec.c",
     "if (component && s->p[i] == '/')",
     "if (0 && component && s->p[i] == '/')",
     ["test_proto_codec"]),
    ("proto-name-dotdot-accepted", "protocol §4 names", "proto/codec.c",
     "if (component && (s->len == 1 || s->len == 2) && s->p[0] == '.' && s->p[s->len - 1] == '.')",
     "if (component && s->len == 1 && s->p[0] == '.')",
     ["test_proto_codec"]),
    ("proto-read-past-body", "protocol §1 bounds", "proto/codec.c",
     "\tif (n > r->len - r->pos)\n\t\treturn NULL;\n\tr->pos += n;",
     "\tif (n > r->len)\n\t\treturn NULL;\n\tr->pos += n;",
     ["test_proto_codec"]),
    ("proto-trailing-bytes-accepted", "protocol §1 bodies", "proto/codec.c",
     "if (r->pos != r->len)",
     "if (0 && r->pos != r->len)",
     ["test_proto_codec"]),
    ("proto-frame-limit-doubled", "protocol §7 frame", "proto/codec.c",
     "if (h->length > max_body)",
     "if (h->length > 2 * (uint64_t)max_body)",
     ["test_proto_codec"]),
    ("proto-tag-replay-accepted", "protocol §3.4 tags", "proto/auth.c",
     "\ts->seq_recv++;",
     "\t(void)s->seq_recv;",
     ["test_proto_auth"]),
    ("proto-rxtag-any-seq", "protocol §3.4 tags (summed while copied in)", "proto/auth.c",
     " && pre->seq == s->seq_recv && ",
     " && pre->seq == pre->seq && ",
     ["test_proto_auth"]),
    ("proto-tag-nonce-without-seq", "protocol §3.4 tags", "proto/auth.c",
     "nonce[4 + i] = (uint8_t)(seq >> (8 * i));",
     "nonce[4 + i] = (uint8_t)(seq & 0);",
     ["test_proto_auth"]),
    ("proto-poly1305-no-final-reduction", "protocol §3.4 tags (RFC 8439 §2.5)", "proto/chacha20.c",
     "mask = (g2 >> 63) - 1;",
     "mask = 0;",
     ["test_proto_chacha"]),
    ("proto-proof-not-checked", "protocol §3.2 proofs", "proto/auth.c",
     "if (!proto_ct_equal(want, q.proof, PROTO_PROOF_SIZE)) {",
     "if (!proto_ct_equal(want, q.proof, 0)) {",
     ["test_proto_auth"]),
    ("proto-rate-limit-one-more", "protocol §3.5 rate limit", "proto/auth.c",
     "if (rl->e[i].fails >= PROTO_AUTH_FREE_FAILS) {",
     "if (rl->e[i].fails > PROTO_AUTH_FREE_FAILS) {",
     ["test_proto_auth"]),
    ("proto-handle-mac-one-byte", "protocol §4 handles", "proto/handle.c",
     "if (!proto_ct_equal(mac, h->b + FH_BODY, PROTO_HANDLE_SIZE - FH_BODY))",
     "if (!proto_ct_equal(mac, h->b + FH_BODY, 1))",
     ["test_proto_auth", "test_proto_server"]),
    ("proto-read-only-session-writes", "protocol §3.5 anonymous", "proto/server.c",
     "if (call->read_only && proto_op_mutates(r->hdr.opcode)) {",
     "if (call->read_only && proto_op_mutates(r->hdr.opcode) && 0) {",
     ["test_proto_server"]),
    ("proto-admin-anonymous", "protocol §5.4 ADMIN needs the secret", "proto/server.c",
     "if (call->anonymous && proto_op_keyed_only(r->hdr.opcode)) {",
     "if (call->anonymous && proto_op_keyed_only(r->hdr.opcode) && 0) {",
     ["test_proto_server"]),
    ("proto-no-busy-limit", "protocol §1.1 outstanding", "proto/server.c",
     "if (t->n >= t->max || free_slot < 0)",
     "if (free_slot < 0)",
     ["test_proto_server"]),
    ("proto-verifier-change-ignored", "protocol §5.3 verifier", "proto/client.c",
     "if (plat_memcmp(e->verf.b, verf->b, PROTO_VERF_SIZE)) {",
     "if (0 && plat_memcmp(e->verf.b, verf->b, PROTO_VERF_SIZE)) {",
     ["test_proto_client"]),
]


def sh(cmd, cwd, timeout=None):
    """Run cmd; returns (returncode or 'timeout', output)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode(errors="replace")


def scratch_copy():
    """build/mutate/src: the tracked and untracked (not ignored) files of
    the working tree, as they are now; third_party linked, build kept so
    only changed objects are rebuilt."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
    os.makedirs(SRC, exist_ok=True)
    for rel in filter(None, files):
        src, dst = os.path.join(REPO, rel), os.path.join(SRC, rel)
        if not os.path.isfile(src):
            continue          # deleted but still listed
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or open(src, "rb").read() != open(dst, "rb").read():
            shutil.copyfile(src, dst)   # new mtime: make rebuilds what changed
    tp = os.path.join(SRC, "third_party")
    if not os.path.exists(tp) and os.path.isdir(os.path.join(REPO, "third_party")):
        os.symlink(os.path.join(REPO, "third_party"), tp)


def run_tests(tests):
    """Build and run tests in the scratch tree; returns (None, "") when all
    pass, ("build", output) when they do not build, else (test, detail)
    for the first failure, detail naming how many tests failed."""
    rc, out = sh(["make", "-s", "--no-print-directory", "-j2"] + [f"build/host/{t}" for t in tests],
                 SRC, timeout=900)
    if rc != 0:
        return "build", out[-1500:]
    fails = [f for f in (run_one(t) for t in tests) if f]
    if not fails:
        return None, ""
    n = sum(f[2] for f in fails)
    first = fails[0][1][len("not ok - "):] if fails[0][1].startswith("not ok - ") else fails[0][1]
    return fails[0][0], f"{n} failed, first {first}"


def run_one(t):
    """Run one test program: None, or (test, first failure, failures)."""
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1")
    try:
        p = subprocess.run([os.path.join(SRC, "build", "host", t)], cwd=SRC, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TEST_TIMEOUT)
        rc, out, note = p.returncode, p.stdout.decode(errors="replace"), ""
    except subprocess.TimeoutExpired as e:
        rc, out, note = "timeout", (e.stdout or b"").decode(errors="replace"), \
            f" (timeout after {TEST_TIMEOUT} s)"
    bad = [ln for ln in out.splitlines() if ln.startswith("not ok")]
    if rc == 0 and not bad:
        return None
    return t, (bad[0] if bad else f"exit status {rc}") + note, max(1, len(bad))


def apply(m, undo=False):
    _, _, rel, old, new, _ = m
    path = os.path.join(SRC, rel)
    with open(path) as f:
        text = f.read()
    a, b = (new, old) if undo else (old, new)
    if text.count(a) != 1:
        raise ValueError(f"{rel}: the line to mutate occurs {text.count(a)} times (want 1): {a.strip()!r}")
    with open(path, "w") as f:
        f.write(text.replace(a, b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], help="only mutations whose id contains this")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    muts = [m for m in MUTATIONS if not a.k or any(k in m[0] for k in a.k)]
    if a.list:
        for m in muts:
            print(f"{m[0]:32s} {m[1]:20s} {m[2]}: {m[3].strip()!r} -> {m[4].strip()!r}")
        return 0
    t0 = time.monotonic()
    scratch_copy()
    tests = sorted({t for m in muts for t in m[5]})
    failed, detail = run_tests(tests)
    if failed:
        print(f"mutate: baseline: {failed} fails without any mutation: {detail}")
        return 1
    print(f"mutate: baseline {len(tests)} host tests pass ({time.monotonic() - t0:.0f} s)")
    rows, bad = [], 0
    for m in muts:
        t1 = time.monotonic()
        try:
            apply(m)
        except ValueError as e:
            rows.append((m[0], m[1], "STALE", str(e)))
            bad += 1
            continue
        try:
            failed, detail = run_tests(m[5])
        finally:
            apply(m, undo=True)
        took = f"{time.monotonic() - t1:.0f} s"
        if failed is None:
            rows.append((m[0], m[1], "SURVIVED", f"{', '.join(m[5])} all pass ({took})"))
            bad += 1
        elif failed == "build":
            rows.append((m[0], m[1], "BUILD FAILED", detail.strip().splitlines()[-1] if detail.strip() else ""))
            bad += 1
        else:
            rows.append((m[0], m[1], "killed", f"{detail[:150]} ({took})"))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'mutation':{w0}s}  {'req':{w1}s}  {'result':12s}  first failing test")
    for r in rows:
        print(f"{r[0]:{w0}s}  {r[1]:{w1}s}  {r[2]:12s}  {r[3]}")
    print(f"mutate: {len(rows) - bad} of {len(rows)} mutations killed in {time.monotonic() - t0:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
