/*
 * Virtio 1.x PCI transport and split virtqueues (see virtio.h).
 *
 * The spec (virtio v1.1, 4.1.4) places the structures through vendor
 * capabilities (ID 0x09): cfg_type 1 common, 2 notify (followed by the
 * notify_off_multiplier), 3 ISR, 4 device; each names a BAR, an offset and
 * a length.  Queue q's doorbell is at notify + queue_notify_off(q) * mult.
 */
#include "drivers/net/virtio.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/time.h"

/* Common configuration structure offsets. */
#define VC_DFSELECT   0x00
#define VC_DF         0x04
#define VC_GFSELECT   0x08
#define VC_GF         0x0c
#define VC_MSIX       0x10
#define VC_NUMQ       0x12
#define VC_STATUS     0x14
#define VC_GEN        0x15
#define VC_QSELECT    0x16
#define VC_QSIZE      0x18
#define VC_QMSIX      0x1a
#define VC_QENABLE    0x1c
#define VC_QNOTIFYOFF 0x1e
#define VC_QDESC      0x20
#define VC_QDRIVER    0x28
#define VC_QDEVICE    0x30

static inline void vc_w8(struct virtio_pci *vp, unsigned o, uint8_t v) { *(volatile uint8_t *)(vp->common + o) = v; }
static inline void vc_w16(struct virtio_pci *vp, unsigned o, uint16_t v) { *(volatile uint16_t *)(vp->common + o) = v; }
static inline void vc_w32(struct virtio_pci *vp, unsigned o, uint32_t v) { *(volatile uint32_t *)(vp->common + o) = v; }
static inline uint8_t vc_r8(struct virtio_pci *vp, unsigned o) { return *(volatile uint8_t *)(vp->common + o); }
static inline uint16_t vc_r16(struct virtio_pci *vp, unsigned o) { return *(volatile uint16_t *)(vp->common + o); }
static inline uint32_t vc_r32(struct virtio_pci *vp, unsigned o) { return *(volatile uint32_t *)(vp->common + o); }
static inline void vc_w64(struct virtio_pci *vp, unsigned o, uint64_t v)
{
	vc_w32(vp, o, (uint32_t)v);
	vc_w32(vp, o + 4, (uint32_t)(v >> 32));
}

static volatile uint8_t *virtio_cap_map(struct pci_dev *d, uint8_t cap)
{
	uint8_t bar = pci_read8(d, cap + 4);
	uint32_t off = pci_read32(d, cap + 8);
	volatile uint8_t *base = bar < PCI_MAX_BARS ? pci_map_bar(d, bar) : NULL;
	return base ? base + off : NULL;
}

int virtio_pci_map(struct virtio_pci *vp, struct pci_dev *d)
{
	vp->pci = d;
	if (!(pci_read16(d, 0x06) & (1u << 4)))
		return -ENODEV;
	for (uint8_t cap = pci_read8(d, 0x34) & 0xfc, n = 0; cap && n < 48;
	     cap = pci_read8(d, cap + 1) & 0xfc, n++) {
		if (pci_read8(d, cap) != 0x09)
			continue;
		switch (pci_read8(d, cap + 3)) {
		case 1: if (!vp->common) vp->common = virtio_cap_map(d, cap); break;
		case 2:
			if (!vp->notify_base) {
				vp->notify_base = virtio_cap_map(d, cap);
				vp->notify_mult = pci_read32(d, cap + 16);
			}
			break;
		case 3: if (!vp->isr) vp->isr = virtio_cap_map(d, cap); break;
		case 4: if (!vp->device) vp->device = virtio_cap_map(d, cap); break;
		}
	}
	if (!vp->common || !vp->notify_base || !vp->isr || !vp->device)
		return -ENODEV;
	return 0;
}

uint8_t virtio_status(struct virtio_pci *vp) { return vc_r8(vp, VC_STATUS); }

void virtio_set_status(struct virtio_pci *vp, uint8_t bits)
{
	vc_w8(vp, VC_STATUS, vc_r8(vp, VC_STATUS) | bits);
}

int virtio_reset(struct virtio_pci *vp)
{
	vc_w8(vp, VC_STATUS, 0);
	uint64_t deadline = time_ns() + NS_PER_S;
	while (vc_r8(vp, VC_STATUS) != 0) {
		if (time_ns() > deadline) {
			ksnprintf(vp->error, sizeof(vp->error), "device status stuck at 0x%x after reset",
				  vc_r8(vp, VC_STATUS));
			return -ETIMEDOUT;
		}
		time_delay_us(10);
	}
	return 0;
}

int virtio_negotiate(struct virtio_pci *vp, uint64_t wanted, uint64_t *got)
{
	uint64_t offered;
	vc_w32(vp, VC_DFSELECT, 0);
	offered = vc_r32(vp, VC_DF);
	vc_w32(vp, VC_DFSELECT, 1);
	offered |= (uint64_t)vc_r32(vp, VC_DF) << 32;
	if (!(offered & (1ULL << VIRTIO_F_VERSION_1))) {
		ksnprintf(vp->error, sizeof(vp->error), "device does not offer VIRTIO_F_VERSION_1 (legacy only)");
		return -ENOTSUP;
	}
	uint64_t use = (wanted | (1ULL << VIRTIO_F_VERSION_1)) & offered;
	vc_w32(vp, VC_GFSELECT, 0);
	vc_w32(vp, VC_GF, (uint32_t)use);
	vc_w32(vp, VC_GFSELECT, 1);
	vc_w32(vp, VC_GF, (uint32_t)(use >> 32));
	virtio_set_status(vp, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(vp) & VIRTIO_STATUS_FEATURES_OK)) {
		ksnprintf(vp->error, sizeof(vp->error), "device refused features 0x%llx (FEATURES_OK cleared)",
			  (unsigned long long)use);
		virtio_set_status(vp, VIRTIO_STATUS_FAILED);
		return -ENOTSUP;
	}
	*got = use;
	return 0;
}

uint16_t virtio_num_queues(struct virtio_pci *vp) { return vc_r16(vp, VC_NUMQ); }

void virtio_set_config_vector(struct virtio_pci *vp, uint16_t vec) { vc_w16(vp, VC_MSIX, vec); }

static unsigned virtio_order(size_t bytes)
{
	unsigned o = 0;
	while ((PAGE_SIZE << o) < bytes)
		o++;
	return o;
}

int virtio_vq_setup(struct virtio_pci *vp, struct virtq *q, uint16_t index, uint16_t max_size, uint16_t vec)
{
	vc_w16(vp, VC_QSELECT, index);
	uint16_t size = vc_r16(vp, VC_QSIZE);
	if (size == 0) {
		ksnprintf(vp->error, sizeof(vp->error), "queue %u is not available", index);
		return -ENODEV;
	}
	if (!q->desc) {
		if (size > max_size)
			size = max_size;      /* sizes are powers of two; so is max_size */
		size_t ring_bytes = 16u * size + 6 + 2u * size;
		size_t used_bytes = 6 + 8u * size;
		q->order_ring = virtio_order(ring_bytes);
		q->order_used = virtio_order(used_bytes);
		q->desc_phys = pmm_alloc_pages(q->order_ring);
		q->used_phys = pmm_alloc_pages(q->order_used);
		if (!q->desc_phys || !q->used_phys) {
			ksnprintf(vp->error, sizeof(vp->error), "out of memory for queue %u", index);
			return -ENOMEM;
		}
		q->size = size;
		q->avail_phys = q->desc_phys + 16u * size;
		q->desc = PHYS_TO_VIRT(q->desc_phys);
		q->avail = PHYS_TO_VIRT(q->avail_phys);
		q->used = PHYS_TO_VIRT(q->used_phys);
	}
	q->index = index;
	memset((void *)q->desc, 0, PAGE_SIZE << q->order_ring);
	memset((void *)q->used, 0, PAGE_SIZE << q->order_used);
	q->avail_idx = q->last_used = 0;
	vc_w16(vp, VC_QSIZE, q->size);
	vc_w64(vp, VC_QDESC, q->desc_phys);
	vc_w64(vp, VC_QDRIVER, q->avail_phys);
	vc_w64(vp, VC_QDEVICE, q->used_phys);
	vc_w16(vp, VC_QMSIX, vec);
	if (vec != VIRTIO_NO_VECTOR && vc_r16(vp, VC_QMSIX) != vec) {
		ksnprintf(vp->error, sizeof(vp->error), "queue %u: device rejected MSI-X entry %u", index, vec);
		return -ENOSPC;
	}
	q->notify = (volatile uint16_t *)(vp->notify_base + (uint32_t)vc_r16(vp, VC_QNOTIFYOFF) * vp->notify_mult);
	vc_w16(vp, VC_QENABLE, 1);
	return 0;
}

void virtio_driver_ok(struct virtio_pci *vp) { virtio_set_status(vp, VIRTIO_STATUS_DRIVER_OK); }

void virtq_publish(struct virtq *q, uint16_t slot)
{
	q->avail[2 + (q->avail_idx & (q->size - 1))] = slot;
	q->avail_idx++;
}

bool virtq_kick(struct virtq *q)
{
	/* Slots written before idx; idx before reading the device's flags. */
	__atomic_store_n(&q->avail[1], q->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->used[0] & VIRTQ_USED_F_NO_NOTIFY)
		return false;
	*q->notify = q->index;
	return true;
}

bool virtq_has_used(struct virtq *q)
{
	return __atomic_load_n(&q->used[1], __ATOMIC_ACQUIRE) != q->last_used;
}

bool virtq_next_used(struct virtq *q, uint16_t *slot, uint32_t *len)
{
	if (!virtq_has_used(q))
		return false;
	volatile struct virtq_used_elem *e =
		(volatile struct virtq_used_elem *)(q->used + 2) + (q->last_used & (q->size - 1));
	*slot = (uint16_t)e->id;
	*len = e->len;
	q->last_used++;
	return true;
}

void virtq_interrupts(struct virtq *q, bool on)
{
	q->avail[0] = on ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
