/*
 * lwIP configuration for the appliance.  Why each value is what it is:
 * docs/network.md ("lwIP configuration").
 *
 * Threading model: NO_SYS = 1.  lwIP runs as a library under one kernel
 * mutex (net_lock, net/netif.c): the network thread takes it to feed
 * received frames and run timers, shell commands and services take it to
 * call the raw API.  No mailboxes, no tcpip thread hop per packet.
 */
#ifndef NET_PORT_LWIPOPTS_H
#define NET_PORT_LWIPOPTS_H

#define NO_SYS                      1
#define SYS_LIGHTWEIGHT_PROT        0   /* every lwIP call is under net_lock */
#define LWIP_SOCKET                 0
#define LWIP_NETCONN                0
#define LWIP_TIMERS                 1
#define LWIP_IPV4                   1
#define LWIP_IPV6                   0

/* Memory: lwIP's own heap for PBUF_RAM (TCP send segments) and static pools.
 * The machine has hundreds of MiB; a few MiB buy full windows on many
 * connections. */
#define MEM_ALIGNMENT               8
#define MEM_SIZE                    (4 * 1024 * 1024)
#define MEMP_NUM_PBUF               512
#define MEMP_NUM_RAW_PCB            4
#define MEMP_NUM_UDP_PCB            8
#define MEMP_NUM_TCP_PCB            160
#define MEMP_NUM_TCP_PCB_LISTEN     16
#define MEMP_NUM_TCP_SEG            2048
#define MEMP_NUM_REASSDATA          16
#define MEMP_NUM_FRAG_PBUF          32
#define MEMP_NUM_ARP_QUEUE          64
#define MEMP_NUM_SYS_TIMEOUT        (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE              2048
#define PBUF_POOL_BUFSIZE           1536  /* one Ethernet frame per pbuf */

/* ARP */
#define LWIP_ARP                    1
#define ARP_TABLE_SIZE              32
#define ARP_QUEUEING                1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0

/* IPv4: reassembly bounded so that fragment floods cannot eat the pool. */
#define IP_REASSEMBLY               1
#define IP_FRAG                     1
#define IP_REASS_MAX_PBUFS          64
#define IP_DEFAULT_TTL              64

#define LWIP_ICMP                   1
#define LWIP_RAW                    1
#define LWIP_DHCP                   1
#define DHCP_DOES_ARP_CHECK         0   /* an ARP probe costs a second at boot */
#define LWIP_AUTOIP                 0
#define LWIP_IGMP                   1   /* mDNS joins 224.0.0.251 */
#define LWIP_DNS                    0
#define LWIP_UDP                    1

/* TCP: window scaling, full-size segments, a 128 KiB receive window and a
 * 64 KiB send buffer: both beat 256 KiB in interleaved runs (docs/network.md). */
#define LWIP_TCP                    1
#define TCP_MSS                     1460
#define LWIP_WND_SCALE              1
#define TCP_RCV_SCALE               2
#define TCP_WND                     (128 * 1024)
#define TCP_SND_BUF                 (64 * 1024 - 1)
#define TCP_SND_QUEUELEN            (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_SNDLOWAT                (0xffff - 4 * TCP_MSS - 1)  /* lwIP: below u16 overflow */
#define TCP_QUEUE_OOSEQ             1
#define TCP_OOSEQ_MAX_PBUFS         256
#define TCP_OVERSIZE                TCP_MSS
#define TCP_LISTEN_BACKLOG          1
#define TCP_DEFAULT_LISTEN_BACKLOG  64
#define LWIP_TCP_KEEPALIVE          1
#define TCP_SYNMAXRTX               4
#define TCP_MAXRTX                  8
#define LWIP_TCP_TIMESTAMPS         0
#define LWIP_ALTCP                  0

/* Netif */
#define LWIP_NETIF_HOSTNAME         1
#define LWIP_NETIF_STATUS_CALLBACK  1
#define LWIP_NETIF_LINK_CALLBACK    1
#define LWIP_NUM_NETIF_CLIENT_DATA  2   /* mDNS + spare */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1  /* TX checksum offload per NIC */
/* Our 64-bit-at-a-time Internet checksum (net/chksum.c). */
unsigned short net_chksum(const void *data, int len);
#define LWIP_CHKSUM                 net_chksum
#define LWIP_SINGLE_NETIF           0
#define ETH_PAD_SIZE                0

/* mDNS responder */
#define LWIP_MDNS_RESPONDER         1
#define MDNS_MAX_SERVICES           2

/* Statistics: `netstat` prints them, high-water marks included. */
#define LWIP_STATS                  1
#define LWIP_STATS_DISPLAY          0
#define LINK_STATS                  1
#define ETHARP_STATS                1
#define IP_STATS                    1
#define IPFRAG_STATS                1
#define ICMP_STATS                  1
#define UDP_STATS                   1
#define TCP_STATS                   1
#define MEM_STATS                   1
#define MEMP_STATS                  1
#define SYS_STATS                   0
#define IGMP_STATS                  1

/* SNTP (lwIP's client, net/ntp.c): servers from config.txt "ntp" and from
 * DHCP (option 42); the answer sets the wall clock through net_ntp_set()
 * with the round trip compensated and the response checked against our
 * request.  The port is a variable so tests can point it at an unprivileged
 * port on the host. */
#include <stdint.h>
extern uint16_t net_ntp_port;
void net_ntp_set(uint32_t unix_sec, uint32_t usec);
void net_ntp_now(uint32_t *unix_sec, uint32_t *usec);
#define SNTP_PORT                   net_ntp_port
#define SNTP_SET_SYSTEM_TIME_US(s, us) net_ntp_set((s), (us))
#define SNTP_GET_SYSTEM_TIME(s, us) net_ntp_now(&(s), &(us))
#define SNTP_COMP_ROUNDTRIP         1
#define SNTP_CHECK_RESPONSE         2
#define SNTP_MAX_SERVERS            2
#define SNTP_GET_SERVERS_FROM_DHCP  1
#define LWIP_DHCP_GET_NTP_SRV       1
#define LWIP_DHCP_MAX_NTP_SERVERS   2
#define SNTP_STARTUP_DELAY          0
#define SNTP_RECV_TIMEOUT           3000
#define SNTP_UPDATE_DELAY           (15 * 60 * 1000)   /* every 15 minutes */
#define SNTP_RETRY_TIMEOUT_MAX      (60 * 1000)

#define LWIP_DEBUG                  0
#define LWIP_NOASSERT               0
#define LWIP_PROVIDE_ERRNO          0

#endif
