# Network stack: our files in net/ plus lwIP compiled from the pinned Debian
# source in third_party/lwip (fetched by `make deps`; nothing copied here).
# Included from the top Makefile before KERNEL_OBJ is formed.

LWIP_DIR := third_party/lwip/src
LWIP_SRC := $(addprefix $(LWIP_DIR)/core/,init.c def.c inet_chksum.c ip.c mem.c memp.c \
		netif.c pbuf.c raw.c stats.c sys.c tcp.c tcp_in.c tcp_out.c timeouts.c udp.c) \
	    $(addprefix $(LWIP_DIR)/core/ipv4/,dhcp.c etharp.c icmp.c igmp.c ip4.c ip4_addr.c \
		ip4_frag.c) \
	    $(LWIP_DIR)/netif/ethernet.c \
	    $(LWIP_DIR)/apps/mdns/mdns.c \
	    $(LWIP_DIR)/apps/lwiperf/lwiperf.c \
	    $(LWIP_DIR)/apps/sntp/sntp.c
LWIP_OBJ := $(LWIP_SRC:$(LWIP_DIR)/%.c=$(BUILD)/lwip/%.o)
LWIP_INC := -Inet/port -I$(LWIP_DIR)/include

KERNEL_C   += $(wildcard net/*.c)
# The file protocol (portable, over platform/platform.h) runs in the
# kernel behind net/apfp.c.
KERNEL_C   += $(wildcard proto/*.c)
KERNEL_EXTRA_OBJ += $(LWIP_OBJ)

# Our files keep the kernel's -Werror; they see lwIP's headers.
$(BUILD)/k/net/%.o: KCFLAGS += $(LWIP_INC)

# lwIP itself: same code model, its own warning set (it is not ours to fix).
LWIP_CFLAGS := $(filter-out $(WARN) -MMD -MP,$(KCFLAGS)) -w $(LWIP_INC) -MMD -MP

$(BUILD)/lwip/%.o: $(LWIP_DIR)/%.c net/port/lwipopts.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(LWIP_CFLAGS) -c $< -o $@

