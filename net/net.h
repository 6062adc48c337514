/*
 * The network stack (net/): lwIP on the NICs of drivers/net/netdev.h.
 *
 * Threading: lwIP runs with NO_SYS = 1 as a library under one mutex.  The
 * network thread ("net", net/netif.c) takes it to hand received frames to
 * lwIP, run lwIP's timers and the NIC watchdog; anything else that calls
 * lwIP (shell commands, services' setup) brackets the calls with
 * net_lock()/net_unlock().  lwIP callbacks (recv, sent, DHCP, ...) run with
 * the lock held, on the network thread or on the locker's thread.
 *
 * Boot order: INIT_SUBSYS "net" (net/net.c) binds every NIC, configures
 * addresses from the loader's config (dhcp | static | none), starts mDNS
 * and the TCP services; INIT_LATE "net_report" waits a bounded time for the
 * first address and prints the interface lines of the boot report.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdint.h>
#include <stdbool.h>

struct netif;
struct netdev;

void net_lock(void);
void net_unlock(void);
/* How often net_lock() found the lock held and how long it then waited:
 * [0] the network thread, [1] everyone else (e.g. a shell command). */
struct net_lock_stats {
	uint64_t acquires;
	uint64_t contended[2], wait_ns[2], wait_max_ns[2];
};
void net_lock_stats(struct net_lock_stats *s);
/* Work for the network thread without taking net_lock: net_wake() makes
 * it run its loop soon, which calls the hook (one, set once at start)
 * under net_lock after each receive batch. */
void net_wake(void);
void net_set_hook(void (*fn)(void));

/* How each address part was obtained, for the boot report and ifconfig. */
enum net_addr_source { NET_SRC_NONE = 0, NET_SRC_DHCP, NET_SRC_STATIC, NET_SRC_FALLBACK };
const char *net_src_name(int src);

struct net_if {
	struct netif *netif;
	struct netdev *dev;
	int src;                     /* enum net_addr_source */
	uint64_t dhcp_deadline_ns;   /* fallback time, 0 when none pending */
	bool reported;               /* address line printed */
	bool link_was_up;
	uint64_t tx_busy_waits;      /* frames that waited for ring space */
	uint64_t tx_drops;           /* frames dropped after waiting */
	uint64_t rx_nobuf;           /* frames dropped: pbuf pool empty */
};

unsigned net_if_count(void);
struct net_if *net_if_at(unsigned i);

/* netif.c: bind a NIC to a new lwIP netif (called with the lock held). */
struct net_if *net_if_add(struct netdev *dev);
/* Start the network thread; 0 or -errno. */
int net_thread_start(void);
/* net.c: called by the network thread (lock held) on address and link
 * changes and once per second. */
void net_if_tick(struct net_if *nif, uint64_t now_ns);
void net_if_report(struct net_if *nif);

/* net.c: abort stale half-open connections when there are many (lock
 * held, once a second); the count for netstat. */
void net_reap_half_open(void);
uint64_t net_half_open_reaped_count(void);

/* services.c: the TCP test services (echo 7, sum 9, gen 19). */
int net_services_start(void);
void net_services_stats(uint64_t *accepted, uint64_t *refused, uint64_t *idle, uint64_t *errors, unsigned *open);

/* tcp_conn.c, for the raw-API servers (lock held): drop every callback of
 * a pcb (its state block is going away); close gracefully, aborting when
 * lwIP has no memory for the FIN: returns ERR_ABRT after an abort (what a
 * callback must then return), else ERR_OK. */
struct tcp_pcb;
void net_tcp_detach(struct tcp_pcb *pcb);
int net_tcp_close(struct tcp_pcb *pcb);
/* Listen on every address at port: 0, -EBUSY (port taken) or -ENOMEM.
 * accept is an lwIP tcp_accept_fn, arg its argument. */
typedef signed char net_err_t;
int net_tcp_listen(uint16_t port, uint8_t backlog,
		   net_err_t (*accept)(void *arg, struct tcp_pcb *newpcb, net_err_t err), void *arg);

/* The configured hostname (config "hostname" or derived from the MAC). */
const char *net_hostname(void);

#define NET_PORT_ECHO 7
#define NET_PORT_SUM  9
#define NET_PORT_GEN  19
#define NET_PORT_IPERF 5001

#endif
