/*
 * config.txt parser: see config.h for the format.  Written without libc so
 * it links into the UEFI loader as is.
 */
#include "boot/config.h"
#include "boot/fmt.h"

#include <stdbool.h>
#include <stdint.h>

/* --- tiny string helpers ------------------------------------------------- */

static bool cfg_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = fmt_strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static void cfg_copy(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i];
	dst[n] = 0;
}

/* --- value parsers ------------------------------------------------------- */

static bool cfg_parse_quad(const char *v, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		unsigned val = 0, digits = 0;
		while (i < n && v[i] >= '0' && v[i] <= '9' && digits < 4) {
			val = val * 10 + (unsigned)(v[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3 || val > 255)
			return false;
		out[part] = (uint8_t)val;
		if (part < 3) {
			if (i >= n || v[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

/* ADDR[:PORT] with a default port; the port 1..65535. */
static bool cfg_parse_endpoint(const char *v, size_t n, uint16_t default_port, struct boot_endpoint *out)
{
	size_t colon = n;
	for (size_t i = 0; i < n; i++)
		if (v[i] == ':')
			colon = i;
	if (!cfg_parse_quad(v, colon, out->ip))
		return false;
	out->port = default_port;
	if (colon == n)
		return true;
	unsigned port = 0, digits = 0;
	for (size_t i = colon + 1; i < n; i++, digits++) {
		if (v[i] < '0' || v[i] > '9' || digits == 5)
			return false;
		port = port * 10 + (unsigned)(v[i] - '0');
	}
	if (!digits || port == 0 || port > 65535)
		return false;
	out->port = (uint16_t)port;
	return true;
}

/* ntp: up to BOOT_NTP_MAX endpoints separated by commas. */
static bool cfg_parse_ntp(const char *v, size_t n, struct boot_endpoint *out)
{
	unsigned count = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && v[i] != ',')
			continue;
		if (count == BOOT_NTP_MAX || !cfg_parse_endpoint(v + start, i - start, 123, &out[count]))
			return false;
		count++;
		start = i + 1;
	}
	return true;
}

static bool cfg_parse_baud(const char *v, size_t n, uint32_t *out)
{
	static const char *const rates[] = { "9600", "19200", "38400", "57600", "115200" };
	static const uint32_t values[] = { 9600, 19200, 38400, 57600, 115200 };
	for (unsigned i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		if (cfg_eq(v, n, rates[i])) {
			*out = values[i];
			return true;
		}
	}
	return false;
}

/* "all" or comma-separated names of [a-z0-9]. */
static bool cfg_valid_disks(const char *v, size_t n)
{
	bool in_name = false;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			in_name = true;
		} else if (c == ',' && in_name) {
			in_name = false;
		} else {
			return false;
		}
	}
	return in_name;
}

/* mount = all | none | DEV[:/NAME],...  (DEV and NAME: a-z 0-9; NAME may
 * also hold '-', '_' and '.'; one path component under the root). */
static bool cfg_valid_mounts(const char *v, size_t n)
{
	if (cfg_eq(v, n, "all") || cfg_eq(v, n, "none"))
		return true;
	if (n == 0)
		return false;
	size_t i = 0;
	while (i < n) {
		size_t d = i;
		while (i < n && ((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9')))
			i++;
		if (i == d)
			return false;
		if (i < n && v[i] == ':') {
			if (++i == n || v[i] != '/')
				return false;
			size_t p = ++i;
			while (i < n && ((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
					 v[i] == '_' || v[i] == '.'))
				i++;
			if (i == p || cfg_eq(v + p, i - p, ".") || cfg_eq(v + p, i - p, ".."))
				return false;
		}
		if (i < n && (v[i] != ',' || i + 1 == n))
			return false;
		if (i < n)
			i++;
	}
	return true;
}

/* export = all | none | NAME[:ro][:anon],...  (NAME: a mount's name, a-z 0-9
 * - _ .; each option at most once). */
static bool cfg_valid_exports(const char *v, size_t n)
{
	if (cfg_eq(v, n, "all") || cfg_eq(v, n, "none"))
		return true;
	size_t i = 0;
	while (i < n) {
		size_t p = i;
		while (i < n && ((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
				 v[i] == '_' || v[i] == '.'))
			i++;
		if (i == p || cfg_eq(v + p, i - p, ".") || cfg_eq(v + p, i - p, ".."))
			return false;
		bool ro = false, anon = false;
		while (i < n && v[i] == ':') {
			if (i + 3 <= n && cfg_eq(v + i + 1, 2, "ro") && !ro) {
				ro = true;
				i += 3;
			} else if (i + 5 <= n && cfg_eq(v + i + 1, 4, "anon") && !anon) {
				anon = true;
				i += 5;
			} else {
				return false;
			}
		}
		if (i < n && (v[i] != ',' || i + 1 == n))
			return false;
		if (i < n)
			i++;
	}
	return n > 0;
}

static bool cfg_printable(const char *v, size_t n, bool allow_space)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0x20 || v[i] > 0x7e)
			return false;
		if (v[i] == ' ' && !allow_space)
			return false;
	}
	return true;
}

/* Host name label (RFC 1123): a-z 0-9 '-', no '-' at either end. */
static bool cfg_valid_hostname(const char *v, size_t n)
{
	if (n == 0 || n > 63 || v[0] == '-' || v[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return false;
	return true;
}

/* --- the parser ---------------------------------------------------------- */

enum cfg_key { K_NET, K_IP, K_NETMASK, K_GATEWAY, K_DISKS, K_CONSOLE, K_TOKEN, K_ARGS, K_HOSTNAME, K_NTP,
	       K_SYSLOG, K_MOUNT, K_FORMAT, K_EXPORT, K_COUNT };
static const char *const cfg_key_names[K_COUNT] = {
	"net", "ip", "netmask", "gateway", "disks", "console", "token", "args", "hostname", "ntp", "syslog",
	"mount", "format", "export",
};

struct cfg_state {
	struct boot_config *cfg;
	unsigned seen_line[K_COUNT];   /* 0 = not seen */
	char *err;
	size_t errlen;
};

static bool cfg_is_blank(char c) { return c == ' ' || c == '\t'; }

/* Apply one key's value; returns false with the error written. */
static bool cfg_apply(struct cfg_state *st, unsigned line, enum cfg_key k,
		      const char *v, size_t n)
{
	struct boot_config *cfg = st->cfg;
	const char *name = cfg_key_names[k];

	switch (k) {
	case K_NET:
		if (cfg_eq(v, n, "dhcp"))
			cfg->net_mode = BOOT_NET_DHCP;
		else if (cfg_eq(v, n, "static"))
			cfg->net_mode = BOOT_NET_STATIC;
		else if (cfg_eq(v, n, "none"))
			cfg->net_mode = BOOT_NET_NONE;
		else
			goto bad_value;
		return true;
	case K_IP:
	case K_NETMASK:
	case K_GATEWAY: {
		uint8_t *dst = k == K_IP ? cfg->ip : k == K_NETMASK ? cfg->netmask : cfg->gateway;
		if (!cfg_parse_quad(v, n, dst))
			goto bad_value;
		return true;
	}
	case K_DISKS:
		if (n >= sizeof(cfg->disks) || !cfg_valid_disks(v, n))
			goto bad_value;
		cfg_copy(cfg->disks, sizeof(cfg->disks), v, n);
		return true;
	case K_MOUNT:
		if (n >= sizeof(cfg->mounts) || !cfg_valid_mounts(v, n))
			goto bad_value;
		cfg_copy(cfg->mounts, sizeof(cfg->mounts), v, n);
		return true;
	case K_EXPORT:
		if (n >= sizeof(cfg->exports) || !cfg_valid_exports(v, n))
			goto bad_value;
		cfg_copy(cfg->exports, sizeof(cfg->exports), v, n);
		return true;
	case K_FORMAT:
		if (cfg_eq(v, n, "never"))
			cfg->format_blank = 0;
		else if (cfg_eq(v, n, "blank"))
			cfg->format_blank = 1;
		else
			goto bad_value;
		return true;
	case K_CONSOLE:
		if (!cfg_parse_baud(v, n, &cfg->console_baud))
			goto bad_value;
		return true;
	case K_TOKEN:
		if (n >= sizeof(cfg->token) || !cfg_printable(v, n, false))
			goto bad_value;
		cfg_copy(cfg->token, sizeof(cfg->token), v, n);
		return true;
	case K_ARGS:
		if (n >= sizeof(cfg->cmdline) || !cfg_printable(v, n, true))
			goto bad_value;
		cfg_copy(cfg->cmdline, sizeof(cfg->cmdline), v, n);
		return true;
	case K_HOSTNAME:
		if (n >= sizeof(cfg->hostname) || !cfg_valid_hostname(v, n))
			goto bad_value;
		cfg_copy(cfg->hostname, sizeof(cfg->hostname), v, n);
		return true;
	case K_NTP:
		if (!cfg_parse_ntp(v, n, cfg->ntp))
			goto bad_value;
		return true;
	case K_SYSLOG:
		if (!cfg_parse_endpoint(v, n, 514, &cfg->syslog))
			goto bad_value;
		return true;
	case K_COUNT:
		break;
	}
bad_value:
	switch (k) {
	case K_NET:
		fmt_message(st->err, st->errlen, "config.txt line %u: net must be dhcp, static or none, not '%.*s'",
			   line, (int)n, v);
		break;
	case K_IP:
	case K_NETMASK:
	case K_GATEWAY:
		fmt_message(st->err, st->errlen, "config.txt line %u: %s must be a dotted quad like 10.0.2.15, not '%.*s'",
			   line, name, (int)n, v);
		break;
	case K_CONSOLE:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: console must be 9600, 19200, 38400, 57600 or 115200, not '%.*s'",
			   line, (int)n, v);
		break;
	case K_DISKS:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: disks must be 'all' or names like nvme0n1,sata0 (a-z, 0-9, under 128 chars)",
			   line);
		break;
	case K_MOUNT:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: mount must be all, none or DEV[:/NAME],... like nvme0n1:/data,sata0 "
			   "(a-z, 0-9; NAME also - _ .; under 160 chars), not '%.*s'", line, (int)n, v);
		break;
	case K_FORMAT:
		fmt_message(st->err, st->errlen, "config.txt line %u: format must be never or blank, not '%.*s'",
			   line, (int)n, v);
		break;
	case K_EXPORT:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: export must be all, none or NAME[:ro][:anon],... like data:ro,backup "
			   "(mount names: a-z, 0-9, - _ .; under 160 chars), not '%.*s'", line, (int)n, v);
		break;
	case K_HOSTNAME:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: hostname must be 1-63 of a-z, 0-9 and '-', not starting or ending with '-', not '%.*s'",
			   line, (int)n, v);
		break;
	case K_NTP:
	case K_SYSLOG:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: %s must be %s like 10.0.2.2:%u, not '%.*s'", line, name,
			   k == K_NTP ? "one or two ADDR[:PORT] separated by a comma," : "ADDR[:PORT]",
			   k == K_NTP ? 123 : 514, (int)n, v);
		break;
	default:
		fmt_message(st->err, st->errlen,
			   "config.txt line %u: %s value is too long or has unprintable characters%s",
			   line, name, k == K_TOKEN ? " or spaces" : "");
		break;
	}
	return false;
}

static bool cfg_line(struct cfg_state *st, unsigned line, const char *s, size_t n)
{
	size_t i = 0, key_start, key_end, val_start, val_end;

	while (i < n && cfg_is_blank(s[i]))
		i++;
	if (i == n || s[i] == '#')
		return true;
	key_start = i;
	bool upper = false;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_')) {
		upper |= s[i] >= 'A' && s[i] <= 'Z';
		i++;
	}
	key_end = i;
	while (i < n && cfg_is_blank(s[i]))
		i++;
	if (key_end != key_start && i < n && s[i] == '=' && upper) {
		char lower[CONFIG_MAX_LINE + 1];
		size_t kn = key_end - key_start;
		for (size_t j = 0; j < kn; j++) {
			char c = s[key_start + j];
			lower[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		fmt_message(st->err, st->errlen, "config.txt line %u: keys are lowercase: write '%.*s', not '%.*s'",
			   line, (int)kn, lower, (int)kn, s + key_start);
		return false;
	}
	if (key_end == key_start || i == n || s[i] != '=') {
		fmt_message(st->err, st->errlen, "config.txt line %u: expected 'key = value', got '%.*s'",
			   line, (int)(n > 60 ? 60 : n), s);
		return false;
	}
	i++;
	while (i < n && cfg_is_blank(s[i]))
		i++;
	val_start = i;
	val_end = n;
	while (val_end > val_start && cfg_is_blank(s[val_end - 1]))
		val_end--;

	for (unsigned k = 0; k < K_COUNT; k++) {
		if (!cfg_eq(s + key_start, key_end - key_start, cfg_key_names[k]))
			continue;
		if (st->seen_line[k]) {
			fmt_message(st->err, st->errlen, "config.txt line %u: '%s' is already set on line %u",
				   line, cfg_key_names[k], st->seen_line[k]);
			return false;
		}
		st->seen_line[k] = line;
		return cfg_apply(st, line, (enum cfg_key)k, s + val_start, val_end - val_start);
	}
	fmt_message(st->err, st->errlen,
		   "config.txt line %u: unknown key '%.*s' (known: net ip netmask gateway disks console token args hostname ntp syslog mount format export)",
		   line, (int)(key_end - key_start), s + key_start);
	return false;
}

/* Cross-key rules, checked after every line parsed. */
static bool cfg_check(struct cfg_state *st)
{
	const struct boot_config *cfg = st->cfg;
	if (cfg->net_mode == BOOT_NET_STATIC) {
		if (!st->seen_line[K_IP] || !st->seen_line[K_NETMASK]) {
			fmt_message(st->err, st->errlen,
				   "config.txt line %u: net = static needs both ip and netmask",
				   st->seen_line[K_NET]);
			return false;
		}
		return true;
	}
	if (cfg->net_mode == BOOT_NET_DHCP) {
		/* Optional fallback address: ip and netmask come together. */
		if (!st->seen_line[K_IP] != !st->seen_line[K_NETMASK] ||
		    (st->seen_line[K_GATEWAY] && !st->seen_line[K_IP])) {
			unsigned at = st->seen_line[K_IP] ? st->seen_line[K_IP] :
				      st->seen_line[K_NETMASK] ? st->seen_line[K_NETMASK] : st->seen_line[K_GATEWAY];
			fmt_message(st->err, st->errlen,
				   "config.txt line %u: a DHCP fallback address needs both ip and netmask", at);
			return false;
		}
		return true;
	}
	for (unsigned k = K_IP; k <= K_GATEWAY; k++) {
		if (st->seen_line[k]) {
			fmt_message(st->err, st->errlen,
				   "config.txt line %u: %s is not used with net = none",
				   st->seen_line[k], cfg_key_names[k]);
			return false;
		}
	}
	return true;
}

void config_defaults(struct boot_config *cfg)
{
	unsigned char *p = (unsigned char *)cfg;
	for (size_t i = 0; i < sizeof(*cfg); i++)
		p[i] = 0;
	cfg->net_mode = BOOT_NET_DHCP;
	cfg->console_baud = 115200;
	cfg_copy(cfg->disks, sizeof(cfg->disks), "all", 3);
	cfg_copy(cfg->mounts, sizeof(cfg->mounts), "all", 3);
	cfg_copy(cfg->exports, sizeof(cfg->exports), "all", 3);
}

int config_parse(const char *text, size_t len, struct boot_config *cfg, char *err, size_t errlen)
{
	struct cfg_state st = { .cfg = cfg, .err = err, .errlen = errlen };
	unsigned line = 0;
	size_t pos = 0;

	config_defaults(cfg);
	if (errlen)
		err[0] = 0;
	if (len > CONFIG_MAX_SIZE) {
		fmt_message(err, errlen, "config.txt is larger than %u bytes", (unsigned)CONFIG_MAX_SIZE);
		return -1;
	}
	/* Editors on some systems start a UTF-8 file with a byte-order mark. */
	if (len >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
	    (unsigned char)text[2] == 0xbf)
		pos = 3;
	while (pos < len) {
		size_t end = pos, n;
		while (end < len && text[end] != '\n')
			end++;
		n = end - pos;
		line++;
		if (n && text[pos + n - 1] == '\r')
			n--;
		if (n > CONFIG_MAX_LINE) {
			fmt_message(err, errlen, "config.txt line %u: longer than %u characters",
				   line, (unsigned)CONFIG_MAX_LINE);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)text[pos + i];
			if ((c < 0x20 && c != '\t') || c > 0x7e) {
				fmt_message(err, errlen, "config.txt line %u: contains a non-ASCII or control character",
					   line);
				return -1;
			}
		}
		if (!cfg_line(&st, line, text + pos, n))
			return -1;
		pos = end + 1;
	}
	return cfg_check(&st) ? 0 : -1;
}
