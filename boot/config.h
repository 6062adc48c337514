/*
 * /appliance/config.txt parser.  Portable (no firmware or libc calls) so the
 * host test suite exercises it directly.
 *
 * Format: one "key = value" per line; blank lines and lines whose first
 * non-blank character is '#' are ignored; CRLF or LF line ends; a UTF-8
 * byte-order mark at the start is skipped; an empty file means defaults.
 * Keys (lowercase; an uppercase key gets its own error):
 *   net      dhcp | static | none                  (default dhcp)
 *   ip, netmask, gateway   dotted quads            (only with net = static;
 *                                                   ip and netmask required)
 *   disks    all | name[,name...]                   (default all)
 *   console  9600 | 19200 | 38400 | 57600 | 115200   (default 115200)
 *   token    printable, no spaces, < 128 chars      (default empty)
 *   args     kernel arguments, < 256 chars          (default empty)
 *   hostname, ntp, syslog, mount, format: see config.c
 *   export   all | none | NAME[:ro][:anon],...      (default all: every mounted
 *                                                   filesystem, read-write,
 *                                                   token required)
 * Every key may appear once.  Anything else is an error naming the line.
 */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <stddef.h>
#include "boot/bootinfo.h"

#define CONFIG_MAX_SIZE (16 * 1024)
#define CONFIG_MAX_LINE 512

void config_defaults(struct boot_config *cfg);
/* Parse text into cfg (which is first reset to defaults).  Returns 0, or -1
 * with a one-line message such as
 *   "config.txt line 3: unknown key 'bogus'"
 * written to err (always NUL-terminated). */
int config_parse(const char *text, size_t len, struct boot_config *cfg,
		 char *err, size_t errlen);

#endif
