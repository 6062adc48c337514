/*
 * AHCI 1.3.1 registers and in-memory structures, and the ATA commands the
 * driver issues (ATA8-ACS).  Names follow the AHCI specification (GHC, PxCMD,
 * PxTFD, ...) so the spec's section numbers can be looked up directly.
 */
#ifndef DRIVERS_AHCI_AHCI_REG_H
#define DRIVERS_AHCI_AHCI_REG_H

#include <stdint.h>

/* ---- HBA generic host control (AHCI 3.1) ---- */
#define AHCI_CAP        0x00
#define AHCI_GHC        0x04
#define AHCI_IS         0x08
#define AHCI_PI         0x0c
#define AHCI_VS         0x10
#define AHCI_CAP2       0x24
#define AHCI_BOHC       0x28

#define AHCI_CAP_NP(c)    ((c) & 0x1f)            /* ports - 1 */
#define AHCI_CAP_NCS(c)   (((c) >> 8) & 0x1f)     /* command slots - 1 */
#define AHCI_CAP_SSS      (1u << 27)              /* staggered spin-up */
#define AHCI_CAP_SNCQ     (1u << 30)              /* native command queuing */
#define AHCI_CAP_S64A     (1u << 31)              /* 64-bit addressing */

#define AHCI_GHC_HR       (1u << 0)               /* HBA reset */
#define AHCI_GHC_IE       (1u << 1)               /* interrupt enable */
#define AHCI_GHC_AE       (1u << 31)              /* AHCI enable */

#define AHCI_CAP2_BOH     (1u << 0)               /* BIOS/OS handoff */
#define AHCI_BOHC_BOS     (1u << 0)               /* BIOS owned semaphore */
#define AHCI_BOHC_OOS     (1u << 1)               /* OS owned semaphore */
#define AHCI_BOHC_BB      (1u << 4)               /* BIOS busy */

/* ---- Port registers (AHCI 3.3), at 0x100 + 0x80 * port ---- */
#define AHCI_PORT_BASE(p) (0x100u + 0x80u * (p))
#define AHCI_PxCLB      0x00
#define AHCI_PxCLBU     0x04
#define AHCI_PxFB       0x08
#define AHCI_PxFBU      0x0c
#define AHCI_PxIS       0x10
#define AHCI_PxIE       0x14
#define AHCI_PxCMD      0x18
#define AHCI_PxTFD      0x20
#define AHCI_PxSIG      0x24
#define AHCI_PxSSTS     0x28
#define AHCI_PxSCTL     0x2c
#define AHCI_PxSERR     0x30
#define AHCI_PxSACT     0x34
#define AHCI_PxCI       0x38

#define AHCI_PxCMD_ST     (1u << 0)     /* start processing the list */
#define AHCI_PxCMD_SUD    (1u << 1)     /* spin-up device */
#define AHCI_PxCMD_POD    (1u << 2)     /* power on device */
#define AHCI_PxCMD_FRE    (1u << 4)     /* FIS receive enable */
#define AHCI_PxCMD_FR     (1u << 14)    /* FIS receive running */
#define AHCI_PxCMD_CR     (1u << 15)    /* command list running */
#define AHCI_PxCMD_ATAPI  (1u << 24)

/* PxIS / PxIE bits */
#define AHCI_PxIS_DHRS    (1u << 0)     /* D2H register FIS */
#define AHCI_PxIS_PSS     (1u << 1)     /* PIO setup FIS */
#define AHCI_PxIS_DSS     (1u << 2)     /* DMA setup FIS */
#define AHCI_PxIS_SDBS    (1u << 3)     /* set device bits FIS (NCQ done) */
#define AHCI_PxIS_UFS     (1u << 4)
#define AHCI_PxIS_DPS     (1u << 5)
#define AHCI_PxIS_PCS     (1u << 6)
#define AHCI_PxIS_PRCS    (1u << 22)    /* PhyRdy changed */
#define AHCI_PxIS_IPMS    (1u << 23)
#define AHCI_PxIS_OFS     (1u << 24)    /* overflow */
#define AHCI_PxIS_INFS    (1u << 26)    /* interface non-fatal */
#define AHCI_PxIS_IFS     (1u << 27)    /* interface fatal */
#define AHCI_PxIS_HBDS    (1u << 28)    /* host bus data error */
#define AHCI_PxIS_HBFS    (1u << 29)    /* host bus fatal error */
#define AHCI_PxIS_TFES    (1u << 30)    /* task file error */
#define AHCI_PxIS_ERRORS  (AHCI_PxIS_TFES | AHCI_PxIS_HBFS | AHCI_PxIS_HBDS | \
			   AHCI_PxIS_IFS | AHCI_PxIS_OFS | AHCI_PxIS_PRCS | AHCI_PxIS_UFS)
#define AHCI_PxIE_DEFAULT (AHCI_PxIS_DHRS | AHCI_PxIS_PSS | AHCI_PxIS_SDBS | \
			   AHCI_PxIS_ERRORS)

/* PxTFD: ATA status in bits 7:0, error in 15:8 */
#define ATA_SR_BSY   0x80
#define ATA_SR_DRDY  0x40
#define ATA_SR_DF    0x20
#define ATA_SR_DRQ   0x08
#define ATA_SR_ERR   0x01

#define ATA_ER_ICRC  0x80
#define ATA_ER_UNC   0x40
#define ATA_ER_MC    0x20
#define ATA_ER_IDNF  0x10
#define ATA_ER_MCR   0x08
#define ATA_ER_ABRT  0x04
#define ATA_ER_NM    0x02
#define ATA_ER_AMNF  0x01

/* PxSSTS.DET / PxSCTL.DET */
#define AHCI_SSTS_DET(s)      ((s) & 0xf)
#define AHCI_SSTS_DET_PRESENT 3      /* device present, phy established */
#define AHCI_SCTL_DET_COMRESET 1

/* PxSIG values (AHCI 3.3.9, from the device's first D2H FIS) */
#define AHCI_SIG_ATA    0x00000101u
#define AHCI_SIG_ATAPI  0xeb140101u
#define AHCI_SIG_SEMB   0xc33c0101u
#define AHCI_SIG_PM     0x96690101u

/* ---- In-memory structures (AHCI 4.2) ---- */

/* Command header: 32 entries form the 1 KiB command list. */
struct ahci_cmd_hdr {
	uint16_t flags;      /* CFL[4:0] in dwords, A(5), W(6), P(7), R(8), B(9), C(10) */
	uint16_t prdtl;      /* PRDT entries */
	volatile uint32_t prdbc;  /* bytes transferred, written by the HBA */
	uint32_t ctba, ctbau;     /* command table, 128-byte aligned */
	uint32_t rsvd[4];
} __attribute__((packed));
#define AHCI_HDR_W    (1u << 6)
#define AHCI_HDR_C    (1u << 10)     /* clear busy upon R_OK */

/* Physical region descriptor: one contiguous piece of the data buffer. */
struct ahci_prd {
	uint32_t dba, dbau;
	uint32_t rsvd;
	uint32_t dbc;        /* byte count - 1 (bit 0 always 1: even counts), I bit 31 */
} __attribute__((packed));
#define AHCI_PRD_MAX_BYTES (4u << 20)

/* Command table: CFIS, ACMD, then the PRDT.  We give each slot 8 KiB: the
 * PRDT and, at the end, a 512-byte DSM range payload for TRIM. */
#define AHCI_CT_SIZE      8192u
#define AHCI_CT_PRDT_OFF  0x80u
#define AHCI_CT_DSM_OFF   (AHCI_CT_SIZE - 512u)
#define AHCI_CT_MAX_PRD   ((AHCI_CT_DSM_OFF - AHCI_CT_PRDT_OFF) / 16u)   /* 472 */

/* Register FIS, host to device (SATA 10.5.5). */
struct fis_h2d {
	uint8_t type;        /* 0x27 */
	uint8_t pmc;         /* bit 7: command (not control) */
	uint8_t command;
	uint8_t feature_lo;
	uint8_t lba0, lba1, lba2, device;
	uint8_t lba3, lba4, lba5, feature_hi;
	uint8_t count_lo, count_hi, icc, control;
	uint8_t aux[4];
} __attribute__((packed));
#define FIS_TYPE_H2D     0x27
#define FIS_H2D_CMD      0x80
#define ATA_DEV_LBA      0x40
#define ATA_DEV_FUA      0x80        /* NCQ: force unit access */

/* Received-FIS area (256 bytes, AHCI 4.2.1). */
#define AHCI_RFIS_SIZE   256u
#define AHCI_RFIS_D2H    0x40        /* last D2H register FIS */
#define AHCI_RFIS_SDB    0x58

/* ---- ATA commands (ATA8-ACS) ---- */
#define ATA_CMD_DSM             0x06   /* DATA SET MANAGEMENT (feature 1: TRIM) */
#define ATA_CMD_READ_DMA_EXT    0x25
#define ATA_CMD_READ_LOG_EXT    0x2f
#define ATA_CMD_WRITE_DMA_EXT   0x35
#define ATA_CMD_WRITE_DMA_FUA_EXT 0x3d
#define ATA_CMD_READ_FPDMA      0x60
#define ATA_CMD_WRITE_FPDMA     0x61
#define ATA_CMD_IDENTIFY_PACKET 0xa1
#define ATA_CMD_FLUSH_EXT       0xea
#define ATA_CMD_IDENTIFY        0xec

#define ATA_LOG_NCQ_ERROR       0x10   /* READ LOG EXT page: failed NCQ tag */

/* IDENTIFY DEVICE words used (ATA8-ACS 7.16) */
#define ID_SERIAL        10     /* 10 words, byte-swapped ASCII */
#define ID_FIRMWARE      23     /* 4 words */
#define ID_MODEL         27     /* 20 words */
#define ID_LBA28         60     /* 2 words */
#define ID_QUEUE_DEPTH   75     /* bits 4:0 = depth - 1 */
#define ID_SATA_CAP      76     /* bit 8: NCQ */
#define ID_CMDSET_82     82     /* bit 5: write cache supported */
#define ID_CMDSET_83     83     /* bit 10: LBA48 */
#define ID_CMDSET_84     84     /* bit 5: GPL (READ LOG EXT), bit 6: WRITE DMA FUA EXT */
#define ID_CMDSET_85     85     /* bit 5: write cache enabled */
#define ID_LBA48         100    /* 4 words */
#define ID_DSM_BLOCKS    105    /* max 512-byte blocks of DSM payload */
#define ID_SECTOR_SIZE   106    /* bit 12: logical sector > 256 words */
#define ID_LOG_SECTOR    117    /* 2 words: logical sector size in words */
#define ID_DSM           169    /* bit 0: TRIM supported */

#endif
