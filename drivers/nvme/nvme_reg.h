/*
 * NVMe registers, queue entries, opcodes and status codes (NVM Express Base
 * Specification 2.0, sections 3.1 "Controller registers", 4 "Data
 * structures", 5 "Admin command set", and the NVM command set spec).
 */
#ifndef DRIVERS_NVME_NVME_REG_H
#define DRIVERS_NVME_NVME_REG_H

#include <stdint.h>

/* Controller registers (BAR0). */
#define NVME_CAP    0x00   /* 64-bit capabilities */
#define NVME_VS     0x08
#define NVME_INTMS  0x0c
#define NVME_INTMC  0x10
#define NVME_CC     0x14
#define NVME_CSTS   0x1c
#define NVME_AQA    0x24
#define NVME_ASQ    0x28   /* 64-bit */
#define NVME_ACQ    0x30   /* 64-bit */
#define NVME_DB_BASE 0x1000

#define NVME_CAP_MQES(c)   ((uint32_t)((c) & 0xffff))         /* 0's based */
#define NVME_CAP_TO(c)     ((uint32_t)(((c) >> 24) & 0xff))   /* 500 ms units */
#define NVME_CAP_DSTRD(c)  ((uint32_t)(((c) >> 32) & 0xf))
#define NVME_CAP_CSS_NVM(c) (((c) >> 37) & 1)
#define NVME_CAP_MPSMIN(c) ((uint32_t)(((c) >> 48) & 0xf))  /* 2^(12+n) */

#define NVME_CC_EN        (1u << 0)
#define NVME_CC_CSS_NVM   (0u << 4)
#define NVME_CC_MPS(n)    ((uint32_t)(n) << 7)
#define NVME_CC_AMS_RR    (0u << 11)
#define NVME_CC_SHN_MASK  (3u << 14)
#define NVME_CC_SHN_NORMAL (1u << 14)
#define NVME_CC_IOSQES(n) ((uint32_t)(n) << 16)
#define NVME_CC_IOCQES(n) ((uint32_t)(n) << 20)

#define NVME_CSTS_RDY     (1u << 0)
#define NVME_CSTS_CFS     (1u << 1)
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_DONE (2u << 2)   /* shutdown processing complete */

/* Submission queue entry: 64 bytes. */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags;            /* FUSE, PSDT (0 = PRPs) */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* Completion queue entry: 16 bytes. */
struct nvme_cqe {
	uint32_t dw0;             /* command specific result */
	uint32_t dw1;
	uint16_t sqhd;            /* SQ head pointer */
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;          /* bit 0 phase; bits 1..15 status field */
};

_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");
_Static_assert(__builtin_offsetof(struct nvme_sqe, cdw10) == 40, "SQE layout");
_Static_assert(__builtin_offsetof(struct nvme_cqe, status) == 14, "CQE layout");

/* Status field (CQE status >> 1). */
#define NVME_SF_SC(s)   ((s) & 0xff)
#define NVME_SF_SCT(s)  (((s) >> 8) & 0x7)
#define NVME_SF_CRD(s)  (((s) >> 11) & 0x3)
#define NVME_SF_MORE(s) (((s) >> 13) & 1)
#define NVME_SF_DNR(s)  (((s) >> 14) & 1)
/* Status without CRD/M/DNR, as printed: (SCT << 8) | SC. */
#define NVME_SF_CODE(s) ((s) & 0x7ff)

#define NVME_SCT_GENERIC  0
#define NVME_SCT_CMD      1
#define NVME_SCT_MEDIA    2
#define NVME_SCT_PATH     3
#define NVME_SCT_VENDOR   7

/* Generic status codes used by the driver itself. */
#define NVME_SC_SUCCESS        0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD  0x02
#define NVME_SC_ABORT_REQ      0x07
#define NVME_SC_LBA_RANGE      0x80
#define NVME_SC_CAP_EXCEEDED   0x81
#define NVME_SC_NS_NOT_READY   0x82

/* Admin opcodes. */
#define NVME_ADM_DELETE_SQ   0x00
#define NVME_ADM_CREATE_SQ   0x01
#define NVME_ADM_DELETE_CQ   0x04
#define NVME_ADM_CREATE_CQ   0x05
#define NVME_ADM_IDENTIFY    0x06
#define NVME_ADM_ABORT       0x08
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_ADM_GET_FEATURES 0x0a
#define NVME_ADM_DBBUF_CONFIG 0x7c   /* Doorbell Buffer Config (NVMe 1.3) */

/* NVM I/O opcodes. */
#define NVME_CMD_FLUSH        0x00
#define NVME_CMD_WRITE        0x01
#define NVME_CMD_READ         0x02
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM          0x09

#define NVME_RW_FUA           (1u << 30)   /* CDW12 */
#define NVME_DSM_AD           (1u << 2)    /* CDW11: deallocate */

/* Identify CNS values. */
#define NVME_CNS_NS           0x00
#define NVME_CNS_CTRL         0x01
#define NVME_CNS_ACTIVE_NSIDS 0x02

/* Feature identifiers. */
#define NVME_FEAT_VWC         0x06
#define NVME_FEAT_NUM_QUEUES  0x07

/* Create I/O CQ CDW11 / Create I/O SQ CDW11. */
#define NVME_CQ_PC   (1u << 0)     /* physically contiguous */
#define NVME_CQ_IEN  (1u << 1)     /* interrupts enabled */
#define NVME_SQ_PC   (1u << 0)

/* Identify Controller: byte offsets of the fields we use. */
#define NVME_IDC_SN      4     /* 20 ASCII */
#define NVME_IDC_MN      24    /* 40 ASCII */
#define NVME_IDC_FR      64    /* 8 ASCII */
#define NVME_IDC_MDTS    77
#define NVME_IDC_VER     80
#define NVME_IDC_RTD3E   88    /* u32: resume/entry latency, microseconds */
#define NVME_IDC_OACS    256   /* u16: optional admin commands */
#define NVME_OACS_DBBUF  (1u << 8)   /* Doorbell Buffer Config supported */
#define NVME_IDC_SQES    512
#define NVME_IDC_CQES    513
#define NVME_IDC_NN      516   /* u32 */
#define NVME_IDC_ONCS    520   /* u16 */
#define NVME_IDC_VWC     525

#define NVME_ONCS_DSM          (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)

/* Identify Namespace: byte offsets. */
#define NVME_IDN_NSZE    0     /* u64 */
#define NVME_IDN_NCAP    8
#define NVME_IDN_NLBAF   25
#define NVME_IDN_FLBAS   26
#define NVME_IDN_DPS     29
#define NVME_IDN_LBAF    128   /* 16 x u32: MS[15:0] LBADS[23:16] RP[25:24] */

/* DSM range (16 bytes). */
struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb;
	uint64_t slba;
};

#endif
