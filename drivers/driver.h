/*
 * Driver registration.  Each driver in the image declares itself with
 *
 *     DRIVER(nvme, 10, nvme_pci_attach_all);
 *
 * and drivers/drivers.c (an INIT_DRIVERS initcall, after PCI enumeration) runs every
 * registered attach function in ascending `order`.  An attach function
 * returns the number of devices it brought up, or -errno; it reports its
 * own failures in words, and a failure never stops the other drivers.
 */
#ifndef DRIVERS_DRIVER_H
#define DRIVERS_DRIVER_H

struct driver {
	const char *name;
	int order;
	int (*attach_all)(void);
};

#define DRIVER(dname, dorder, dfn)                                              \
	static const struct driver driver_desc_##dname                           \
		__attribute__((used, section(".drivers"), aligned(8))) =         \
		{ #dname, (dorder), (dfn) }

#endif
