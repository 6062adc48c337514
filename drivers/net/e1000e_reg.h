/*
 * Intel 82574L (e1000e) registers and descriptor formats used by
 * drivers/net/e1000e.c, from the 82574 GbE Controller Family datasheet
 * (chapter 10 registers, 3.2/3.3 legacy receive and transmit descriptors).
 */
#ifndef DRIVERS_NET_E1000E_REG_H
#define DRIVERS_NET_E1000E_REG_H

#include <stdint.h>

#define EM_CTRL      0x0000
#define EM_STATUS    0x0008
#define EM_EERD      0x0014
#define EM_CTRL_EXT  0x0018
#define EM_ICR       0x00c0
#define EM_ITR       0x00c4
#define EM_IMS       0x00d0
#define EM_IMC       0x00d8
#define EM_RCTL      0x0100
#define EM_TCTL      0x0400
#define EM_TIPG      0x0410
#define EM_RDBAL     0x2800
#define EM_RDBAH     0x2804
#define EM_RDLEN     0x2808
#define EM_RDH       0x2810
#define EM_RDT       0x2818
#define EM_RDTR      0x2820
#define EM_RADV      0x282c
#define EM_TDBAL     0x3800
#define EM_TDBAH     0x3804
#define EM_TDLEN     0x3808
#define EM_TDH       0x3810
#define EM_TDT       0x3818
#define EM_TIDV      0x3820
#define EM_TADV      0x382c
#define EM_RXCSUM    0x5000
#define EM_RFCTL     0x5008
#define EM_MTA       0x5200    /* 128 dwords */
#define EM_RAL0      0x5400
#define EM_RAH0      0x5404

#define EM_CTRL_LRST     (1u << 3)
#define EM_CTRL_ASDE     (1u << 5)
#define EM_CTRL_SLU      (1u << 6)
#define EM_CTRL_ILOS     (1u << 7)
#define EM_CTRL_RST      (1u << 26)
#define EM_CTRL_PHY_RST  (1u << 31)

#define EM_STATUS_FD     (1u << 0)
#define EM_STATUS_LU     (1u << 1)

#define EM_EERD_START    (1u << 0)
#define EM_EERD_DONE     (1u << 1)
#define EM_EERD_ADDR_SHIFT 2
#define EM_EERD_DATA_SHIFT 16

#define EM_RAH_AV        (1u << 31)

/* Interrupt causes (ICR/IMS/IMC). */
#define EM_INT_TXDW      (1u << 0)     /* transmit descriptor written back */
#define EM_INT_TXQE      (1u << 1)
#define EM_INT_LSC       (1u << 2)     /* link status change */
#define EM_INT_RXDMT0    (1u << 4)     /* receive descriptors below threshold */
#define EM_INT_RXO       (1u << 6)     /* receiver overrun */
#define EM_INT_RXT0      (1u << 7)     /* receive timer */

#define EM_RCTL_EN       (1u << 1)
#define EM_RCTL_SBP      (1u << 2)
#define EM_RCTL_UPE      (1u << 3)
#define EM_RCTL_MPE      (1u << 4)
#define EM_RCTL_BAM      (1u << 15)
#define EM_RCTL_BSIZE_2048 (0u << 16)
#define EM_RCTL_SECRC    (1u << 26)

#define EM_TCTL_EN       (1u << 1)
#define EM_TCTL_PSP      (1u << 3)
#define EM_TCTL_CT(x)    ((uint32_t)(x) << 4)
#define EM_TCTL_COLD(x)  ((uint32_t)(x) << 12)

/* Legacy receive descriptor. */
struct em_rx_desc {
	uint64_t addr;
	uint16_t length;
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
} __attribute__((packed));

#define EM_RXD_STAT_DD   (1u << 0)
#define EM_RXD_STAT_EOP  (1u << 1)
#define EM_RXD_ERR_CE    (1u << 0)     /* CRC or alignment error */
#define EM_RXD_ERR_SE    (1u << 1)     /* symbol error */
#define EM_RXD_ERR_SEQ   (1u << 2)     /* sequence error */
#define EM_RXD_ERR_CXE   (1u << 4)     /* carrier extension error */
#define EM_RXD_ERR_TCPE  (1u << 5)     /* TCP/UDP checksum error */
#define EM_RXD_ERR_IPE   (1u << 6)     /* IPv4 header checksum error */
#define EM_RXD_ERR_RXE   (1u << 7)     /* receive data error */
#define EM_RXD_ERR_FRAME (EM_RXD_ERR_CE | EM_RXD_ERR_SE | EM_RXD_ERR_SEQ | EM_RXD_ERR_CXE | EM_RXD_ERR_RXE)

/* Legacy transmit descriptor. */
struct em_tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso;                   /* where the computed checksum goes */
	uint8_t cmd;
	uint8_t status;
	uint8_t css;                   /* where checksumming starts */
	uint16_t special;
} __attribute__((packed));

/* Extended transmit descriptors (datasheet 7.2.10-7.2.11), the layout of
 * struct em_tx_desc reused: a TCP/IP context descriptor says where the
 * checksums go, a data descriptor with POPTS.TXSM asks for the TCP/UDP one.
 * In the data descriptor, `cso` holds bits 16-23 of the length word (DTYP
 * in its high nibble), `cmd` is DCMD and `css` is POPTS. */
struct em_tx_ctx_desc {
	uint8_t ipcss, ipcso;          /* IP checksum start, where it goes */
	uint16_t ipcse;                /* IP checksum end, 0 = end of packet */
	uint8_t tucss, tucso;          /* TCP/UDP checksum start, where it goes */
	uint16_t tucse;
	uint32_t cmd_len;              /* PAYLEN 0-19, DTYP 20-23, TUCMD 24-31 */
	uint8_t status;
	uint8_t hdrlen;
	uint16_t mss;
} __attribute__((packed));

#define EM_TXD_CTX_CMD_TCP  (1u << 24)   /* TUCMD.TCP: TCP (else UDP) */
#define EM_TXD_CTX_CMD_IP   (1u << 25)   /* TUCMD.IP: IPv4 (else IPv6) */
#define EM_TXD_CTX_CMD_RS   (1u << 27)
#define EM_TXD_CTX_CMD_DEXT (1u << 29)
#define EM_TXD_DTYP_DATA    0x10u        /* in em_tx_desc.cso: DTYP 0001 */
#define EM_TXD_CMD_DEXT     (1u << 5)    /* in em_tx_desc.cmd (DCMD) */
#define EM_TXD_POPTS_TXSM   (1u << 1)    /* in em_tx_desc.css (POPTS) */

#define EM_TXD_CMD_EOP   (1u << 0)
#define EM_TXD_CMD_IFCS  (1u << 1)
#define EM_TXD_CMD_IC    (1u << 2)
#define EM_TXD_CMD_RS    (1u << 3)
#define EM_TXD_STAT_DD   (1u << 0)

#endif
