/*
 * Host tests of the loader's config.txt parser (boot/config.c).
 * Each error case checks the line number in the message, because naming the
 * line is the whole point of the parser's error contract.
 */
#define TEST_SUITE "config"
#include "tests/host/test.h"
#include "boot/config.h"

static struct boot_config cfg;
static char err[256];

static int parse(const char *text)
{
	memset(&cfg, 0xa5, sizeof(cfg));   /* prove the parser resets everything */
	memset(err, 'x', sizeof(err));
	return config_parse(text, strlen(text), &cfg, err, sizeof(err));
}

/* err starts with "config.txt line N:" */
static bool err_names_line(unsigned line)
{
	char want[64];
	snprintf(want, sizeof(want), "config.txt line %u:", line);
	return strncmp(err, want, strlen(want)) == 0;
}

TEST(defaults_on_empty)
{
	EXPECT_EQ_INT(parse(""), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
	EXPECT_EQ_INT(cfg.console_baud, 115200);
	EXPECT_STREQ(cfg.disks, "all");
	EXPECT_STREQ(cfg.token, "");
	EXPECT_STREQ(cfg.cmdline, "");
	EXPECT_EQ_INT(cfg.ip[0] | cfg.ip[3] | cfg.netmask[0] | cfg.gateway[0], 0);
	EXPECT_STREQ(err, "");
}

TEST(defaults_function)
{
	memset(&cfg, 0x5a, sizeof(cfg));
	config_defaults(&cfg);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
	EXPECT_EQ_INT(cfg.console_baud, 115200);
	EXPECT_STREQ(cfg.disks, "all");
	EXPECT_STREQ(cfg.cmdline, "");
}

TEST(shipped_default_file)
{
	FILE *f = fopen("tools/config.default.txt", "rb");
	static char buf[CONFIG_MAX_SIZE + 1];
	size_t n = 0;
	EXPECT(f != NULL);
	if (!f)
		return;
	n = fread(buf, 1, CONFIG_MAX_SIZE, f);
	fclose(f);
	buf[n] = 0;
	EXPECT_EQ_INT(parse(buf), 0);
	EXPECT_STREQ(err, "");
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
	/* make run's disks are formatted on first boot and mounted. */
	EXPECT_STREQ(cfg.mounts, "all");
	EXPECT_EQ_INT(cfg.format_blank, 1);
}

TEST(full_static)
{
	EXPECT_EQ_INT(parse("net = static\nip = 10.0.2.15\nnetmask = 255.255.255.0\n"
			    "gateway = 10.0.2.2\ndisks = nvme0n1,sata0\nconsole = 38400\n"
			    "token = s3cr3t-T0ken\nargs = selftest smp=1 panic=poweroff\n"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_STATIC);
	EXPECT_EQ_INT(cfg.ip[0], 10); EXPECT_EQ_INT(cfg.ip[1], 0);
	EXPECT_EQ_INT(cfg.ip[2], 2); EXPECT_EQ_INT(cfg.ip[3], 15);
	EXPECT_EQ_INT(cfg.netmask[0], 255); EXPECT_EQ_INT(cfg.netmask[3], 0);
	EXPECT_EQ_INT(cfg.gateway[3], 2);
	EXPECT_STREQ(cfg.disks, "nvme0n1,sata0");
	EXPECT_EQ_INT(cfg.console_baud, 38400);
	EXPECT_STREQ(cfg.token, "s3cr3t-T0ken");
	EXPECT_STREQ(cfg.cmdline, "selftest smp=1 panic=poweroff");
}

TEST(net_modes)
{
	EXPECT_EQ_INT(parse("net = none\n"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_NONE);
	EXPECT_EQ_INT(parse("net = dhcp\n"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
	EXPECT_EQ_INT(parse("net = wifi\n"), -1);
	EXPECT(err_names_line(1));
	EXPECT(strstr(err, "wifi") != NULL);
}

TEST(comments_blanks_whitespace)
{
	EXPECT_EQ_INT(parse("# comment\n\n   \t\n  # indented comment\n\targs\t=\t a b  \t\n"), 0);
	EXPECT_STREQ(cfg.cmdline, "a b");
}

TEST(crlf_and_no_final_newline)
{
	EXPECT_EQ_INT(parse("net = none\r\nargs = x y\r\nconsole = 9600"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_NONE);
	EXPECT_STREQ(cfg.cmdline, "x y");
	EXPECT_EQ_INT(cfg.console_baud, 9600);
}

TEST(empty_args_value)
{
	EXPECT_EQ_INT(parse("args =\n"), 0);
	EXPECT_STREQ(cfg.cmdline, "");
	EXPECT_EQ_INT(parse("args =    \n"), 0);
	EXPECT_STREQ(cfg.cmdline, "");
}

TEST(unknown_key_names_line)
{
	EXPECT_EQ_INT(parse("net = dhcp\n# x\nbogus = 1\n"), -1);
	EXPECT(err_names_line(3));
	EXPECT(strstr(err, "bogus") != NULL);
}

TEST(malformed_line)
{
	EXPECT_EQ_INT(parse("net = dhcp\nthis line has no equals sign\n"), -1);
	EXPECT(err_names_line(2));
	EXPECT_EQ_INT(parse("= value\n"), -1);
	EXPECT(err_names_line(1));
	EXPECT_EQ_INT(parse("Net = dhcp\n"), -1);   /* keys are lower case */
	EXPECT(err_names_line(1));
}

TEST(line_numbers_count_crlf_and_blank_lines)
{
	EXPECT_EQ_INT(parse("\r\n\r\n# c\r\nnet = dhcp\r\n\r\nconsole = 1234\r\n"), -1);
	EXPECT(err_names_line(6));
	EXPECT(strstr(err, "1234") != NULL);
}

TEST(duplicate_key)
{
	EXPECT_EQ_INT(parse("args = a\nnet = none\nargs = b\n"), -1);
	EXPECT(err_names_line(3));
	EXPECT(strstr(err, "line 1") != NULL);   /* names the first occurrence too */
}

TEST(console_rates)
{
	static const char *ok[] = { "9600", "19200", "38400", "57600", "115200" };
	static const unsigned val[] = { 9600, 19200, 38400, 57600, 115200 };
	char text[64];
	for (unsigned i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "console = %s\n", ok[i]);
		EXPECT_EQ_INT(parse(text), 0);
		EXPECT_EQ_INT(cfg.console_baud, val[i]);
	}
	EXPECT_EQ_INT(parse("console = 115201\n"), -1);
	EXPECT_EQ_INT(parse("console = fast\n"), -1);
	EXPECT_EQ_INT(parse("console =\n"), -1);
	EXPECT(err_names_line(1));
}

TEST(dotted_quads)
{
	static const char *bad[] = { "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d",
				     "1.2.3.4 ", "01234.1.1.1", "1.2.3.-4", "" };
	char text[128];
	EXPECT_EQ_INT(parse("net = static\nip = 0.0.0.0\nnetmask = 255.255.255.255\n"), 0);
	EXPECT_EQ_INT(cfg.netmask[1], 255);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "net = static\nnetmask = 255.0.0.0\nip = %s#\n", bad[i]);
		/* the '#' is not a comment inside a value: it makes every case bad,
		 * so also test the bare value without it */
		EXPECT_EQ_INT(parse(text), -1);
		snprintf(text, sizeof(text), "net = static\nnetmask = 255.0.0.0\nip = %s\n", bad[i]);
		if (strcmp(bad[i], "1.2.3.4 ") == 0)
			continue;   /* trailing blanks are trimmed: this one is valid */
		EXPECT_EQ_INT(parse(text), -1);
		EXPECT(err_names_line(3));
	}
}

TEST(static_needs_ip_and_netmask)
{
	EXPECT_EQ_INT(parse("net = static\nip = 10.0.0.1\n"), -1);
	EXPECT(err_names_line(1));
	EXPECT_EQ_INT(parse("net = static\nnetmask = 255.0.0.0\n"), -1);
	EXPECT_EQ_INT(parse("net = static\nip = 10.0.0.1\nnetmask = 255.0.0.0\n"), 0);
}

TEST(dhcp_fallback_address)
{
	/* With dhcp, ip+netmask (and optionally gateway) are the fallback. */
	EXPECT_EQ_INT(parse("net = dhcp\nip = 10.0.2.99\nnetmask = 255.255.255.0\ngateway = 10.0.2.2\n"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
	EXPECT_EQ_INT(cfg.ip[3], 99);
	EXPECT_EQ_INT(cfg.gateway[3], 2);
	EXPECT_EQ_INT(parse("net = dhcp\n\ngateway = 10.0.0.1\n"), -1);
	EXPECT(err_names_line(3));
	EXPECT_EQ_INT(parse("ip = 10.0.0.1\n"), -1);   /* default net is dhcp; netmask missing */
	EXPECT(err_names_line(1));
	EXPECT_EQ_INT(parse("net = dhcp\nnetmask = 255.0.0.0\n"), -1);
	EXPECT(err_names_line(2));
}

TEST(address_with_net_none_rejected)
{
	EXPECT_EQ_INT(parse("net = none\nip = 10.0.0.1\nnetmask = 255.0.0.0\n"), -1);
	EXPECT(err_names_line(2));
	EXPECT_EQ_INT(parse("net = none\ngateway = 10.0.0.1\n"), -1);
	EXPECT(err_names_line(2));
}

TEST(hostname_rules)
{
	EXPECT_EQ_INT(parse("net = none\n"), 0);
	EXPECT_STREQ(cfg.hostname, "");
	EXPECT_EQ_INT(parse("hostname = files-01\n"), 0);
	EXPECT_STREQ(cfg.hostname, "files-01");
	static const char *bad[] = { "-a", "a-", "Files", "a.b", "a b", "a_b", "",
		"a234567890123456789012345678901234567890123456789012345678901234" };
	char text[128];
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "net = none\nhostname = %s\n", bad[i]);
		EXPECT_EQ_INT(parse(text), -1);
		EXPECT(err_names_line(2));
		EXPECT(strstr(err, "hostname") != NULL);
	}
}

TEST(ntp_and_syslog_endpoints)
{
	EXPECT_EQ_INT(parse("net = dhcp\n"), 0);
	EXPECT_EQ_INT(cfg.ntp[0].port, 0);                      /* none by default */
	EXPECT_EQ_INT(cfg.syslog.port, 0);
	EXPECT_EQ_INT(parse("ntp = 10.0.2.2\nsyslog = 192.168.1.5:5140\n"), 0);
	EXPECT(cfg.ntp[0].ip[0] == 10 && cfg.ntp[0].ip[3] == 2 && cfg.ntp[0].port == 123);
	EXPECT_EQ_INT(cfg.ntp[1].port, 0);
	EXPECT(cfg.syslog.ip[0] == 192 && cfg.syslog.ip[3] == 5 && cfg.syslog.port == 5140);
	EXPECT_EQ_INT(parse("ntp = 10.0.2.2:12300,10.0.2.3\nsyslog = 10.0.2.2\n"), 0);
	EXPECT(cfg.ntp[0].port == 12300 && cfg.ntp[1].ip[3] == 3 && cfg.ntp[1].port == 123);
	EXPECT_EQ_INT(cfg.syslog.port, 514);
	static const char *bad[] = { "ntp = pool.ntp.org", "ntp = 10.0.2.2:0", "ntp = 10.0.2.2:65536",
		"ntp = 10.0.2.2:", "ntp = 1.2.3.4,5.6.7.8,9.9.9.9", "ntp = 10.0.2.2,", "syslog = 10.0.2.2:x",
		"syslog = 10.0.2.2,10.0.2.3", "syslog = " };
	char text[128];
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "net = dhcp\n%s\n", bad[i]);
		EXPECT_EQ_INT(parse(text), -1);
		EXPECT(err_names_line(2));
		EXPECT(strstr(err, bad[i][0] == 'n' ? "ntp" : "syslog") != NULL);
	}
}

TEST(disks_values)
{
	EXPECT_EQ_INT(parse("disks = nvme0n1\n"), 0);
	EXPECT_STREQ(cfg.disks, "nvme0n1");
	EXPECT_EQ_INT(parse("disks = nvme0n1,\n"), -1);
	EXPECT_EQ_INT(parse("disks = ,sata0\n"), -1);
	EXPECT_EQ_INT(parse("disks = nvme0n1,,sata0\n"), -1);
	EXPECT_EQ_INT(parse("disks = NVME\n"), -1);
	EXPECT_EQ_INT(parse("disks = a b\n"), -1);
	EXPECT_EQ_INT(parse("disks =\n"), -1);
	EXPECT(err_names_line(1));
}

TEST(mount_and_format_values)
{
	EXPECT_EQ_INT(parse(""), 0);
	EXPECT_STREQ(cfg.mounts, "all");
	EXPECT_EQ_INT(cfg.format_blank, 0);            /* never formats unless told */
	static const char *good[] = { "none", "nvme0n1", "nvme0n1:/data", "nvme0n1:/data,sata0",
				      "sata0:/backup-1.x_y,nvme0n1:/d" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "mount = %s\n", good[i]);
		EXPECT_EQ_INT(parse(text), 0);
		EXPECT_STREQ(cfg.mounts, good[i]);
	}
	static const char *bad[] = { "nvme0n1,", ",sata0", "nvme0n1:", "nvme0n1:data", "nvme0n1:/",
				     "nvme0n1:/a/b", "nvme0n1:/..", "nvme0n1:/.", "NVME", "a b", "", "x:/D" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "net = none\nmount = %s\n", bad[i]);
		EXPECT_EQ_INT(parse(text), -1);
		EXPECT(err_names_line(2));
		EXPECT(strstr(err, "mount must be") != NULL);
	}
	EXPECT_EQ_INT(parse("format = blank\n"), 0);
	EXPECT_EQ_INT(cfg.format_blank, 1);
	EXPECT_EQ_INT(parse("format = never\n"), 0);
	EXPECT_EQ_INT(cfg.format_blank, 0);
	EXPECT_EQ_INT(parse("format = always\n"), -1);
	EXPECT(strstr(err, "format must be never or blank") != NULL);
}

TEST(export_values)
{
	EXPECT_EQ_INT(parse(""), 0);
	EXPECT_STREQ(cfg.exports, "all");
	static const char *good[] = { "none", "data", "data:ro", "data:anon:ro", "data:ro,backup-1.x_y:anon",
				      "a,b,c" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "export = %s\n", good[i]);
		EXPECT_EQ_INT(parse(text), 0);
		EXPECT_STREQ(cfg.exports, good[i]);
	}
	static const char *bad[] = { "data,", ",data", "data:", "data:rw", "data:ro:ro", "data:anon:anon",
				     "Data", "a b", "", "..", "data:/x", "data::ro", "data:roo" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "net = none\nexport = %s\n", bad[i]);
		EXPECT_EQ_INT(parse(text), -1);
		EXPECT(err_names_line(2));
		EXPECT(strstr(err, "export must be") != NULL);
	}
}

TEST(token_rules)
{
	EXPECT_EQ_INT(parse("token = has space\n"), -1);
	EXPECT(err_names_line(1));
	EXPECT_EQ_INT(parse("token = !#$%&*+-./:;<>?@[]^_{|}~\n"), 0);
	EXPECT_STREQ(cfg.token, "!#$%&*+-./:;<>?@[]^_{|}~");
}

TEST(value_length_limits)
{
	char text[600], val[300];
	memset(val, 'a', sizeof(val));
	val[127] = 0;   /* token: 127 chars fit in 128 */
	snprintf(text, sizeof(text), "token = %s\n", val);
	EXPECT_EQ_INT(parse(text), 0);
	EXPECT_EQ_INT(strlen(cfg.token), 127);
	val[127] = 'a';
	val[128] = 0;
	snprintf(text, sizeof(text), "token = %s\n", val);
	EXPECT_EQ_INT(parse(text), -1);
	memset(val, 'b', sizeof(val));
	val[255] = 0;   /* args: 255 chars fit in 256 */
	snprintf(text, sizeof(text), "args = %s\n", val);
	EXPECT_EQ_INT(parse(text), 0);
	EXPECT_EQ_INT(strlen(cfg.cmdline), 255);
	val[255] = 'b';
	val[256] = 0;
	snprintf(text, sizeof(text), "args = %s\n", val);
	EXPECT_EQ_INT(parse(text), -1);
	EXPECT(err_names_line(1));
}

TEST(overlong_line)
{
	static char text[CONFIG_MAX_LINE + 64];
	memset(text, ' ', sizeof(text));
	memcpy(text, "# ", 2);
	text[CONFIG_MAX_LINE + 10] = '\n';
	text[CONFIG_MAX_LINE + 11] = 0;
	EXPECT_EQ_INT(parse(text), -1);
	EXPECT(err_names_line(1));
}

TEST(control_and_non_ascii_bytes)
{
	EXPECT_EQ_INT(parse("net = none\nargs = a\x01" "b\n"), -1);
	EXPECT(err_names_line(2));
	EXPECT_EQ_INT(parse("args = caf\xc3\xa9\n"), -1);
	EXPECT(err_names_line(1));
}

TEST(embedded_nul_is_rejected)
{
	static const char text[] = "net = none\nargs = a\0b\n";
	memset(&cfg, 0, sizeof(cfg));
	EXPECT_EQ_INT(config_parse(text, sizeof(text) - 1, &cfg, err, sizeof(err)), -1);
	EXPECT(err_names_line(2));
}

TEST(too_large_file)
{
	static char text[CONFIG_MAX_SIZE + 2];
	memset(text, '\n', sizeof(text));
	EXPECT_EQ_INT(config_parse(text, CONFIG_MAX_SIZE + 1, &cfg, err, sizeof(err)), -1);
	EXPECT(strstr(err, "larger") != NULL);
	EXPECT_EQ_INT(config_parse(text, CONFIG_MAX_SIZE, &cfg, err, sizeof(err)), 0);
}

TEST(error_buffer_truncation)
{
	char small[12];
	memset(small, 'x', sizeof(small));
	EXPECT_EQ_INT(config_parse("bogus = 1\n", 10, &cfg, small, sizeof(small)), -1);
	EXPECT(memchr(small, 0, sizeof(small)) != NULL);   /* always NUL-terminated */
	EXPECT(strncmp(small, "config.txt ", 11) == 0);
	/* A zero-sized error buffer must not be written at all. */
	char none[1] = { 'x' };
	EXPECT_EQ_INT(config_parse("bogus = 1\n", 10, &cfg, none, 0), -1);
	EXPECT_EQ_INT(none[0], 'x');
}

TEST(length_bounds_respected)
{
	/* The parser must stop at len even if the buffer continues. */
	static const char text[] = "net = none\nbogus = 1\n";
	EXPECT_EQ_INT(config_parse(text, 11, &cfg, err, sizeof(err)), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_NONE);
}

TEST(byte_order_mark_skipped)
{
	/* A UTF-8 byte-order mark before the first key, as some editors write. */
	EXPECT_EQ_INT(parse("\xef\xbb\xbf" "net = none\nargs = smp=1\n"), 0);
	EXPECT_STREQ(err, "");
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_NONE);
	EXPECT_STREQ(cfg.cmdline, "smp=1");
	/* Only at the very start: elsewhere it is still a non-ASCII byte. */
	EXPECT_EQ_INT(parse("net = none\n\xef\xbb\xbf" "args = x\n"), -1);
	EXPECT(err_names_line(2));
	/* A file that is only a mark is an empty file: defaults. */
	EXPECT_EQ_INT(parse("\xef\xbb\xbf"), 0);
	EXPECT_EQ_INT(cfg.net_mode, BOOT_NET_DHCP);
}

TEST(uppercase_key_named)
{
	EXPECT_EQ_INT(parse("# x\nNET = none\n"), -1);
	EXPECT(err_names_line(2));
	EXPECT(strstr(err, "keys are lowercase: write 'net', not 'NET'") != NULL);
	EXPECT_EQ_INT(parse("Args = x\n"), -1);
	EXPECT(strstr(err, "write 'args', not 'Args'") != NULL);
	/* An unknown key in capitals is still about case first. */
	EXPECT_EQ_INT(parse("BOGUS = 1\n"), -1);
	EXPECT(strstr(err, "keys are lowercase") != NULL);
}

TEST_MAIN()
