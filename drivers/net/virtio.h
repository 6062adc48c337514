/*
 * Virtio 1.x over PCI, modern interface only (drivers/net/virtio.c): the
 * transport (vendor capabilities for the common, notify, ISR and device
 * configuration structures), the status handshake and split virtqueues.
 *
 * Call order: virtio_pci_map() -> virtio_reset() -> status ACKNOWLEDGE |
 * DRIVER -> virtio_negotiate(wanted) (sets FEATURES_OK and checks the device
 * kept it) -> virtio_vq_setup() per queue -> virtio_driver_ok().
 * A reset (virtio_reset) returns the device to the start of this sequence;
 * the queues' memory is kept and reused by the next virtio_vq_setup().
 *
 * Split virtqueue, as used here: descriptor i always describes buffer slot
 * i (one descriptor per buffer, no chains), so a used element's id is the
 * slot.  The driver owns avail (publishes slots), the device owns used.
 */
#ifndef DRIVERS_NET_VIRTIO_H
#define DRIVERS_NET_VIRTIO_H

#include <stdint.h>
#include <stdbool.h>
#include "kernel/pci.h"

#define VIRTIO_STATUS_ACK          1
#define VIRTIO_STATUS_DRIVER       2
#define VIRTIO_STATUS_DRIVER_OK    4
#define VIRTIO_STATUS_FEATURES_OK  8
#define VIRTIO_STATUS_NEEDS_RESET  64
#define VIRTIO_STATUS_FAILED       128

#define VIRTIO_F_VERSION_1         32

#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1
#define VIRTIO_NO_VECTOR           0xffff

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
} __attribute__((packed));

struct virtq {
	uint16_t index;              /* queue number on the device */
	uint16_t size;               /* descriptors */
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail;    /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;     /* flags, idx, then used elements */
	uint64_t desc_phys, avail_phys, used_phys;
	volatile uint16_t *notify;   /* this queue's doorbell */
	uint16_t avail_idx;          /* next avail index we publish */
	uint16_t last_used;          /* next used index we consume */
	unsigned order_ring, order_used;
};

struct virtio_pci {
	struct pci_dev *pci;
	volatile uint8_t *common;
	volatile uint8_t *isr;
	volatile uint8_t *device;     /* device-specific configuration */
	volatile uint8_t *notify_base;
	uint32_t notify_mult;
	char error[96];
};

/* Find and map the capabilities; -ENODEV when the function has no modern
 * interface. */
int virtio_pci_map(struct virtio_pci *vp, struct pci_dev *d);
/* Write 0 to device_status and wait (1 s deadline) until it reads 0. */
int virtio_reset(struct virtio_pci *vp);
uint8_t virtio_status(struct virtio_pci *vp);
void virtio_set_status(struct virtio_pci *vp, uint8_t bits);   /* ORs bits in */
/* Accept `wanted & offered` (VERSION_1 is required); returns the accepted
 * set in *got; -ENOTSUP when the device refuses FEATURES_OK. */
int virtio_negotiate(struct virtio_pci *vp, uint64_t wanted, uint64_t *got);
uint16_t virtio_num_queues(struct virtio_pci *vp);
void virtio_set_config_vector(struct virtio_pci *vp, uint16_t vec);
/* Allocate (first time) and program queue `index` with up to max_size
 * descriptors and MSI-X entry `vec` (VIRTIO_NO_VECTOR for none). */
int virtio_vq_setup(struct virtio_pci *vp, struct virtq *q, uint16_t index, uint16_t max_size, uint16_t vec);
void virtio_driver_ok(struct virtio_pci *vp);

/* Virtqueue operations (not locked: the caller serialises). */
void virtq_publish(struct virtq *q, uint16_t slot);   /* add slot to avail */
bool virtq_kick(struct virtq *q);                      /* notify unless suppressed; true if notified */
/* Next used element, false when none. */
bool virtq_next_used(struct virtq *q, uint16_t *slot, uint32_t *len);
bool virtq_has_used(struct virtq *q);
void virtq_interrupts(struct virtq *q, bool on);
#endif
