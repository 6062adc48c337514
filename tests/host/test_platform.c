/* The platform's one wait for memory the device owns (platform.h, buffer
 * lifetime): it never returns while the memory is still in use. */
#define TEST_SUITE "platform"
#include "tests/host/test.h"
#include "platform/host/platform_host.h"
#include <unistd.h>

static int flag;
static struct plat_waitq *wq;

static bool flag_set(void *arg) { (void)arg; return plat_load(&flag) != 0; }

static void set_flag_later(void *arg)
{
	plat_sleep_ns((uint64_t)(uintptr_t)arg);
	plat_store(&flag, 1);
	plat_wake_all(wq);
}

TEST(wait_owned_outlasts_its_deadline)
{
	plat_init();
	wq = plat_waitq_new("t");
	flag = 0;
	struct plat_thread *t = plat_thread_create("late", set_flag_later, (void *)(uintptr_t)200000000ull);
	int rc = plat_wait_owned(wq, flag_set, NULL, NULL, plat_time_ns() + 20000000ull, "test");
	EXPECT_EQ_INT(rc, -PLAT_ETIMEDOUT);
	EXPECT(plat_load(&flag) == 1);       /* it did not leave before the owner */
	EXPECT_EQ_INT(plat_thread_join(t, plat_time_ns() + 5000000000ull), 0);
	plat_waitq_free(wq);
}

TEST(wait_owned_in_time_is_zero)
{
	wq = plat_waitq_new("t");
	flag = 0;
	struct plat_thread *t = plat_thread_create("soon", set_flag_later, (void *)(uintptr_t)1000000ull);
	EXPECT_EQ_INT(plat_wait_owned(wq, flag_set, NULL, NULL, plat_time_ns() + 5000000000ull, "test"), 0);
	EXPECT_EQ_INT(plat_thread_join(t, plat_time_ns() + 5000000000ull), 0);
	plat_waitq_free(wq);
}

/* A late synchronous write is reported as EIO, but only after the device
 * has finished with the buffer: the data is on the device when it returns. */
static void late_sync_write(bool polled)
{
	char path[] = "/tmp/plat-owned-XXXXXX";
	int fd = mkstemp(path);
	EXPECT(fd >= 0);
	close(fd);
	struct plat_bdev *b = plat_host_bdev_open(path, 1 << 20, 4096, polled ? 0 : 2, polled);
	EXPECT(b != NULL);
	plat_host_bdev_set_delay(b, 300000000ull);
	uint64_t saved = plat_sync_io_timeout_ns;
	plat_sync_io_timeout_ns = 30000000ull;
	char *buf = plat_alloc_pages(4096);
	memset(buf, 0x5a, 4096);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_WRITE, 8192, buf, 4096), -PLAT_EIO);
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(b, &st);
	EXPECT_EQ_INT(st.writes, 1);
	plat_sync_io_timeout_ns = saved;
	plat_host_bdev_set_delay(b, 0);
	memset(buf, 0, 4096);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_READ, 8192, buf, 4096), 0);
	EXPECT(buf[0] == 0x5a && buf[4095] == 0x5a);
	plat_free_pages(buf, 4096);
	plat_bdev_close(b);
	unlink(path);
}

TEST(late_sync_write_returns_after_device) { late_sync_write(false); }
TEST(late_sync_write_returns_after_device_polled) { late_sync_write(true); }

static struct plat_bdev *scratch_bdev(char *path, bool polled)
{
	int fd = mkstemp(path);
	EXPECT(fd >= 0);
	close(fd);
	return plat_host_bdev_open(path, 1 << 20, 4096, polled ? 0 : 2, polled);
}

static bool all_bytes(const char *buf, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != c)
			return false;
	return true;
}

/* Discard reaches the device: the range reads back as zeroes, its
 * neighbours are untouched, and the device counts it. */
TEST(discard_forgets_only_its_range)
{
	char path[] = "/tmp/plat-discard-XXXXXX";
	struct plat_bdev *b = scratch_bdev(path, false);
	char *buf = plat_alloc_pages(3 * 4096);
	memset(buf, 0x77, 3 * 4096);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_WRITE, 0, buf, 3 * 4096), 0);
	EXPECT_EQ_INT(plat_bdev_discard(b, 4096, 4096), 0);
	memset(buf, 1, 3 * 4096);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_READ, 0, buf, 3 * 4096), 0);
	EXPECT(all_bytes(buf, 4096, 0x77));
	EXPECT(all_bytes(buf + 4096, 4096, 0));
	EXPECT(all_bytes(buf + 8192, 4096, 0x77));
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(b, &st);
	EXPECT_EQ_INT(st.discards, 1);
	EXPECT_EQ_INT(st.discard_bytes, 4096);
	EXPECT_EQ_INT(plat_bdev_discard(b, 100, 4096), -PLAT_EINVAL);   /* unaligned */
	plat_free_pages(buf, 3 * 4096);
	plat_bdev_close(b);
	unlink(path);
}

/* With a volatile cache, an unflushed discard is lost at a power cut like
 * any unflushed write: durable data stays. */
TEST(discard_in_volatile_cache_waits_for_flush)
{
	char path[] = "/tmp/plat-discard-XXXXXX";
	struct plat_bdev *b = scratch_bdev(path, false);
	char *buf = plat_alloc_pages(4096);
	memset(buf, 0x33, 4096);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_WRITE, 0, buf, 4096), 0);
	plat_host_bdev_set_volatile(b, true);
	EXPECT_EQ_INT(plat_bdev_discard(b, 0, 4096), 0);
	plat_host_bdev_crash(b);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_READ, 0, buf, 4096), 0);
	EXPECT(all_bytes(buf, 4096, 0x33));
	EXPECT_EQ_INT(plat_bdev_discard(b, 0, 4096), 0);
	EXPECT_EQ_INT(plat_bdev_flush(b), 0);
	plat_host_bdev_crash(b);
	EXPECT_EQ_INT(plat_bdev_rw(b, PLAT_BIO_READ, 0, buf, 4096), 0);
	EXPECT(all_bytes(buf, 4096, 0));
	plat_free_pages(buf, 4096);
	plat_bdev_close(b);
	unlink(path);
}

TEST(strerror_names_errors)
{
	EXPECT(strcmp(plat_strerror(-PLAT_ENOSPC), plat_strerror(PLAT_ENOSPC)) == 0);
	EXPECT(strstr(plat_strerror(-PLAT_ENOSPC), "space") != NULL);
}

/* plat_random: getrandom(2) on the host; every byte written, draws
 * differ, bits balanced, no 64-bit word repeated, odd lengths exact. */
TEST(random_bytes)
{
	static uint8_t a[1 << 16], b[32];
	uint64_t ones = 0;

	EXPECT_EQ_INT(plat_random(a, sizeof(a)), 0);
	EXPECT_EQ_INT(plat_random(b, sizeof(b)), 0);
	EXPECT(memcmp(a, b, sizeof(b)) != 0);
	for (size_t i = 0; i < sizeof(a); i++)
		ones += (uint64_t)__builtin_popcount(a[i]);
	/* 524288 fair bits: mean 262144, sd 362; 4000 is 11 sd */
	EXPECT(ones > 262144 - 4000 && ones < 262144 + 4000);
	const uint64_t *w = (const uint64_t *)a;
	unsigned repeats = 0;
	for (size_t i = 1; i < sizeof(a) / 8; i++)
		repeats += w[i] == w[i - 1];
	EXPECT_EQ_INT(repeats, 0);
	memset(b, 0xa5, sizeof(b));
	EXPECT_EQ_INT(plat_random(b, 13), 0);
	EXPECT(b[13] == 0xa5 && b[31] == 0xa5);
	EXPECT_EQ_INT(plat_random(b, 0), 0);
}

TEST_MAIN()
