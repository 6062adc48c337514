/*
 * Helpers the raw-API TCP servers share (services.c, http.c, apfp.c); all
 * called under net_lock.
 */
#include "net/net.h"
#include "kernel/errno.h"

#include "lwip/tcp.h"

void net_tcp_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

int net_tcp_close(struct tcp_pcb *pcb)
{
	net_tcp_detach(pcb);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return ERR_OK;
}

int net_tcp_listen(uint16_t port, uint8_t backlog,
		   net_err_t (*accept)(void *arg, struct tcp_pcb *newpcb, net_err_t err), void *arg)
{
	struct tcp_pcb *pcb = tcp_new();

	if (!pcb)
		return -ENOMEM;
	if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
		tcp_abort(pcb);
		return -EBUSY;
	}
	struct tcp_pcb *l = tcp_listen_with_backlog(pcb, backlog);
	if (!l) {
		tcp_abort(pcb);
		return -ENOMEM;
	}
	tcp_arg(l, arg);
	tcp_accept(l, accept);
	return 0;
}
