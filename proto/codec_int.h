/*
 * Inside the codec: messages are described by tables of fields
 * (proto/msgs.c), walked by one engine (proto/codec.c) in both directions,
 * so the encoder and decoder cannot disagree about a layout and every
 * check is written once (field_check) and applied on both sides.
 */
#ifndef PROTO_CODEC_INT_H
#define PROTO_CODEC_INT_H

#include "proto/codec.h"

enum pf_type {
	PF_U8,          /* any value */
	PF_BOOL,        /* 0 or 1 (C bool) */
	PF_ENUM,        /* u8 in [min, lim] */
	PF_U16,
	PF_U32,         /* any value */
	PF_U32_MAX,     /* u32 <= lim */
	PF_FLAGS,       /* u32, only bits in lim */
	PF_U64,
	PF_FIXED,       /* lim raw bytes (verifier, nonce, proof) */
	PF_HANDLE,      /* a file handle: PROTO_HANDLE_SIZE raw bytes, opened by the server */
	PF_NAME,        /* str: one path component, 1..lim bytes */
	PF_TEXT,        /* str: 1..lim bytes, no NUL */
	PF_DATA,        /* u32 length + <= lim bytes */
	PF_TIME,        /* s64 seconds + u32 nanoseconds < 10^9 */
	PF_STRUCT,      /* nested structure of kind lim (enum pf_struct) */
	PF_LIST,        /* u32 count + elements of enum proto_list_kind lim */
};

struct pf_field {
	uint8_t type;
	uint8_t min;
	uint16_t off;
	uint32_t lim;
	const char *name;
};

/* Structures: the list element kinds first (same numbers as enum
 * proto_list_kind), then the nested ones. */
enum pf_struct {
	PS_DIRENT = PROTO_L_DIRENT, PS_DIRENTPLUS = PROTO_L_DIRENTPLUS, PS_EXPORT = PROTO_L_EXPORT,
	PS_SNAP = PROTO_L_SNAP, PS_XNAME = PROTO_L_XNAME,
	PS_ATTR = PROTO_L_COUNT, PS_PRE, PS_WCC, PS_SATTR, PS_COUNT
};

struct pf_layout {
	const struct pf_field *f;
	uint8_t n;
	uint16_t size;          /* of the C structure */
	/* checks across fields (sattr mask), after the fields' own */
	int (*check)(const void *s, const char **why);
};

struct pf_msg {
	const char *name;
	struct pf_layout req, rep;
	bool mutates;
	bool keyed_only;        /* refused on anonymous sessions whatever the exports (ADMIN) */
};

extern const struct pf_layout pf_structs[PS_COUNT];
extern const struct pf_msg pf_msgs[PROTO_OP_LIMIT];

#endif
