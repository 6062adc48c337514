/*
 * The file server's exports and filesystem operations (net/apfp_fs.c).
 *
 * Call order: apfp_fs_init() once at server start (it initialises the
 * server with cowfs's operations and the first export table), then
 * apfp_fs_refresh() before each request (cheap unless a filesystem was
 * mounted or unmounted since).
 */
#ifndef NET_APFP_FS_H
#define NET_APFP_FS_H

#include <stddef.h>
#include "proto/server.h"

int apfp_fs_init(struct proto_server *srv, const void *handle_key, size_t key_len);
void apfp_fs_refresh(struct proto_server *srv);

#endif
