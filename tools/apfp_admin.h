/*
 * The CLI's `admin` command (tools/apfp_admin.c): a shell command run on
 * the appliance through the file protocol's ADMIN operation
 * (docs/protocol.md §5.4), its output streamed to stdout.
 */
#ifndef TOOLS_APFP_ADMIN_H
#define TOOLS_APFP_ADMIN_H

#include "tools/apfp_client.h"

/* argv[0] is "admin".  Returns 0 when the remote command succeeded, a
 * negative errno with c->err set when it could not run (-EINVAL: usage,
 * already printed); when it ran and failed, closes c and exits with
 * status 6. */
int apfp_admin(struct apfpc *c, int argc, char **argv);

#endif
