/* lwIP includes <stdlib.h> for atoi (netif_find); the kernel provides it
 * in net/sys_arch.c. */
#ifndef NET_PORT_STDLIB_H
#define NET_PORT_STDLIB_H
#include <stddef.h>
int atoi(const char *s);
#endif
