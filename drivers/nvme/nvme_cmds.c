/*
 * Shell command `nvme`: per-controller doorbell counters and the shadow
 * doorbell switch.  `nvme shadow CTRL off` keeps the shadow buffer written
 * (a controller that accepted Doorbell Buffer Config reads its tails from
 * there; only a reset makes it forget the buffer) and adds the MMIO write
 * to every doorbell, which is the MMIO-only behaviour; `on` goes back to
 * writing MMIO only when the controller's EventIdx asks for it.  Shadow
 * doorbells are set up only with the boot argument nvme_shadow_db (off by
 * default: see nvme.c, nvme_dbbuf_setup).
 */
#include "drivers/nvme/nvme_var.h"
#include "kernel/shell.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"

static void nvmecmd_show(struct nvme_ctrl *c)
{
	uint64_t sub = 0, comp = 0, sqdb = 0, cqdb = 0, skipped = 0;
	for (unsigned i = 0; i < c->nqueues; i++) {
		sub += c->io[i].submits;
		comp += c->io[i].completions;
		sqdb += c->io[i].sq_doorbells;
		cqdb += c->io[i].cq_doorbells;
		skipped += c->io[i].db_skipped;
	}
	kprintf("%s: shadow doorbells %s; %llu commands, %llu SQ MMIO doorbells; %llu completions, "
		"%llu CQ MMIO doorbells; %llu left to the shadow buffer\n", c->name,
		!c->dbbuf_on ? ((c->oacs & NVME_OACS_DBBUF) ? "off" : "not supported") :
		c->dbbuf_mmio ? "off (MMIO on every doorbell)" : "on",
		(unsigned long long)sub, (unsigned long long)sqdb, (unsigned long long)comp,
		(unsigned long long)cqdb, (unsigned long long)skipped);
}

static int cmd_nvme(int argc, char **argv)
{
	if (argc == 1) {
		if (!nvme_ctrls)
			kprintf("nvme: no controller\n");
		for (struct nvme_ctrl *c = nvme_ctrls; c; c = c->next)
			nvmecmd_show(c);
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "shadow") != 0)
		return -EINVAL;
	bool on = strcmp(argv[3], "on") == 0;
	if (!on && strcmp(argv[3], "off") != 0) {
		kprintf("nvme: '%s' is not on or off\n", argv[3]);
		return SHELL_REPORTED;
	}
	struct nvme_ctrl *c = nvme_ctrls;
	while (c && strcmp(c->name, argv[2]) != 0)
		c = c->next;
	if (!c) {
		kprintf("nvme: no controller '%s'\n", argv[2]);
		return SHELL_REPORTED;
	}
	if (on && !c->dbbuf_on) {
		kprintf("nvme: %s: shadow doorbells are not set up (%s)\n", c->name,
			(c->oacs & NVME_OACS_DBBUF) ? "boot with nvme_shadow_db to set them up"
						    : "the controller does not support them");
		return SHELL_REPORTED;
	}
	__atomic_store_n(&c->dbbuf_mmio, !on, __ATOMIC_SEQ_CST);
	nvmecmd_show(c);
	return 0;
}
SHELL_COMMAND(nvme, "nvme [shadow CTRL on|off]", "NVMe doorbell counters; shadow doorbells on or off", cmd_nvme);
