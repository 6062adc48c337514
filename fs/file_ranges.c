/*
 * The file data path's per-file range sets (fs/file_int.h: delalloc
 * reservations, allocations in flight with their owner, direct I/O
 * running) -- small sorted arrays, merged on insert -- and the direct I/O
 * range lock built on the last.
 */
#include "fs/file_int.h"

static bool owner_match(const struct range *r, uint64_t owner)
{
	return owner == ANY_OWNER || r->owner == owner;
}

int cowfs_ranges_reserve(struct ranges *s)
{
	if (s->n < s->cap)
		return 0;
	unsigned cap = s->cap ? s->cap * 2 : 8;
	struct range *r = plat_alloc(cap * sizeof(*r));
	if (!r)
		return -PLAT_ENOMEM;
	if (s->n)
		plat_memcpy(r, s->r, s->n * sizeof(*r));
	plat_free(s->r);
	s->r = r;
	s->cap = cap;
	return 0;
}

int cowfs_delalloc_add(struct ranges *s, uint64_t start, uint64_t end, uint64_t *added)
{
	uint64_t covered = 0;
	unsigned i = 0;
	while (i < s->n && s->r[i].end < start)
		i++;
	unsigned j = i;
	uint64_t ns = start, ne = end;
	for (; j < s->n && s->r[j].start <= end; j++) {
		uint64_t a = s->r[j].start > start ? s->r[j].start : start;
		uint64_t b = s->r[j].end < end ? s->r[j].end : end;
		if (b > a)
			covered += b - a;
		ns = s->r[j].start < ns ? s->r[j].start : ns;
		ne = s->r[j].end > ne ? s->r[j].end : ne;
	}
	*added = (end - start - covered) / BS;
	if (j == i) {                           /* no overlap: insert */
		int err = cowfs_ranges_reserve(s);
		if (err)
			return err;
		plat_memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n++;
	} else if (j > i + 1) {                 /* merge r[i..j) into r[i] */
		plat_memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
		s->n -= j - i - 1;
	}
	s->r[i] = (struct range){ ns, ne, 0, WB_OWNER };
	return 0;
}

uint64_t cowfs_ranges_cut(struct ranges *s, uint64_t start, uint64_t end, uint64_t owner, struct ranges *removed)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < s->n;) {
		struct range r = s->r[i];
		uint64_t a = r.start > start ? r.start : start, b = r.end < end ? r.end : end;
		if (b <= a || !owner_match(&r, owner)) {
			i++;
			continue;
		}
		total += b - a;
		if (removed && !cowfs_ranges_reserve(removed))
			removed->r[removed->n++] = (struct range){ a, b, r.addr ? r.addr + (a - r.start) : 0, r.owner };
		if (a > r.start && b < r.end) {         /* split */
			if (cowfs_ranges_reserve(s))
				return total;                /* keeps the whole: a leak of a reservation only */
			plat_memmove(&s->r[i + 2], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
			s->n++;
			s->r[i].end = a;
			s->r[i + 1] = (struct range){ b, r.end, r.addr ? r.addr + (b - r.start) : 0, r.owner };
			i += 2;
		} else if (a > r.start) {
			s->r[i].end = a;
			i++;
		} else if (b < r.end) {
			s->r[i] = (struct range){ b, r.end, r.addr ? r.addr + (b - r.start) : 0, r.owner };
			i++;
		} else {
			plat_memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
			s->n--;
		}
	}
	return total;
}

const struct range *cowfs_ranges_find(const struct ranges *s, uint64_t pos, uint64_t owner)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].start <= pos && pos < s->r[i].end && owner_match(&s->r[i], owner))
			return &s->r[i];
	return NULL;
}

/* ---- direct I/O range lock ----
 * Direct reads and direct writes inside the file both hold the inode lock
 * shared.  A read of a range a direct write is remapping could map a block
 * the write's completion then frees, its checksum with it, and fail the
 * verification (EIO) for data it was entitled to read whole, old or new.
 * So over one range reads exclude writes; reads share with reads, writes
 * with writes (each remaps only its own blocks).  Taken under the inode
 * lock, before any m->lock work; one per thread. */
struct dio_wait { int *gen, seen; };

static bool dio_gen_moved(void *arg)
{
	struct dio_wait *w = arg;
	return plat_load(w->gen) != w->seen;
}

int cowfs_dio_range_lock(struct cowfs_vnode *vn, uint64_t start, uint64_t end, bool write)
{
	struct cowfs_fdata *fd = vn->fd;
	uint64_t deadline = plat_time_ns() + iomap_lock_wait_ns;
	plat_mutex_lock(vn->m->lock);
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < fd->dio.n && !busy; i++)
			busy = fd->dio.r[i].start < end && start < fd->dio.r[i].end && (fd->dio.r[i].addr != 0) != write;
		if (!busy) {
			int err = cowfs_ranges_reserve(&fd->dio);
			if (!err)
				fd->dio.r[fd->dio.n++] = (struct range){ start, end, write, cowfs_dio_owner() };
			plat_mutex_unlock(vn->m->lock);
			return err;
		}
		struct dio_wait w = { &fd->dio_gen, plat_load(&fd->dio_gen) };
		plat_mutex_unlock(vn->m->lock);
		int err = plat_wait_until(fd->dio_wq, dio_gen_moved, &w, deadline);
		if (err) {
			plat_log(PLAT_LOG_ERR, "cowfs: inode %llu: direct I/O range %llu+%llu: %s",
				 (unsigned long long)vn->rec.ino, (unsigned long long)start,
				 (unsigned long long)(end - start), plat_strerror(err));
			return err;
		}
		plat_mutex_lock(vn->m->lock);
	}
}

void cowfs_dio_range_unlock_locked(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	struct cowfs_fdata *fd = vn->fd;
	uint64_t me = cowfs_dio_owner();
	for (unsigned i = 0; i < fd->dio.n; i++)
		if (fd->dio.r[i].start == start && fd->dio.r[i].end == end && fd->dio.r[i].owner == me) {
			plat_memmove(&fd->dio.r[i], &fd->dio.r[i + 1], (fd->dio.n - i - 1) * sizeof(*fd->dio.r));
			fd->dio.n--;
			break;
		}
	plat_add(&fd->dio_gen, 1);
}

void cowfs_dio_range_unlock(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	plat_mutex_lock(vn->m->lock);
	cowfs_dio_range_unlock_locked(vn, start, end);
	plat_mutex_unlock(vn->m->lock);
	plat_wake_all(vn->fd->dio_wq);
}

uint64_t cowfs_ranges_overlap(const struct ranges *s, uint64_t start, uint64_t end)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < s->n; i++) {
		uint64_t a = s->r[i].start > start ? s->r[i].start : start, b = s->r[i].end < end ? s->r[i].end : end;
		if (b > a)
			total += b - a;
	}
	return total;
}
