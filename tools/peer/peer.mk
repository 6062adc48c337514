# The Linux peer comparison (tools/peer/, docs/peer.md).  A benchmark, not a
# test: nothing here runs under `make test`.
#   make bench-peer                 full run: 16 workloads x 3 interleaved repetitions
#   make bench-peer SECS=3 REPS=1   quick run
#   make bench-peer ONLY='randread 4k,read 1M'   a subset (substrings of "DEV WORKLOAD BS qdN")
#   make bench-peer MODES=poll      only our polling mode
#   make bench-peer KIND=fs         only the filesystem table (cowfs vs ext4, XFS, btrfs)
#   make bench-peer KIND=fs FILES=500 FS_SIDES=ext4,xfs   fewer files, some sides only
#   make bench-peer KIND=net SECS=5 REPS=3   only the network table (lwiperf vs Linux iperf2,
#                                   virtio-net and e1000e; guest-to-host runs are 10 s, lwiperf's fixed time)
#   make bench-peer KIND=net NICS=virtio NET_SIDES=linux   one NIC model, one side
#   make bench-peer KIND=proto NICS=virtio REPS=3   only the file protocol table (apfp bench and the
#                                   apfp-fuse mount vs raw TCP in the same boot, and vs Linux nfsd over
#                                   NFSv3 measured by build/peer/nfsbench); PROTO_MIB=64 FILES=500
#                                   GETATTRS=2000 PROTO_SIDES=ours,linux
#   make bench-peer-compare         re-tabulate the last run (build/peer/runs.txt)
#   make peer-deps                  fetch and build the peer only (kernel, busybox, fio)
# Results: build/peer/results.md, results.txt, ratios.png (block table),
# fs-results.md, fs-results.txt, fs-ratios.png (filesystem table), net-results.md,
# net-results.txt (network table), proto-results.md, proto-results.txt (file
# protocol table); logs build/peer/*.log.
SECS  ?= 10
REPS  ?= 3
MODES ?= poll,irq
ONLY  ?=
KIND  ?= blk,fs
FILES ?= 1000
FS_SIDES ?= ours,ext4,xfs,btrfs
NICS ?= virtio,e1000e
NET_SIDES ?= ours,linux
PROTO_SIDES ?= ours,linux
PROTO_MIB ?= 64
GETATTRS ?= 2000
PEER_ARGS = --secs $(SECS) --reps $(REPS) --modes '$(MODES)' --only '$(ONLY)' --kind '$(KIND)' \
	--files $(FILES) --fs-sides '$(FS_SIDES)' --nics '$(NICS)' --net-sides '$(NET_SIDES)' \
	--proto-sides '$(PROTO_SIDES)' --proto-mib $(PROTO_MIB) --getattrs $(GETATTRS)

.PHONY: bench-peer bench-peer-compare peer-deps

# Our image is needed unless only Linux sides run (KIND=fs without ours in
# FS_SIDES, KIND=net without ours in NET_SIDES).
peer_comma := ,
peer_words = $(subst $(peer_comma), ,$(1))
peer_has = $(filter $(1),$(call peer_words,$(2)))
PEER_ESP = $(if $(call peer_has,blk,$(KIND))$(and $(call peer_has,fs,$(KIND)),$(call peer_has,ours,$(FS_SIDES)))$(and \
	$(call peer_has,net,$(KIND)),$(call peer_has,ours,$(NET_SIDES)))$(and \
	$(call peer_has,proto,$(KIND)),$(call peer_has,ours,$(PROTO_SIDES))),esp)
# The proto table's host tools: our CLI and FUSE mount, and the NFSv3 client
# (Debian's libnfs, tools/deps.sh).
PEER_PROTO = $(if $(call peer_has,proto,$(KIND)),$(BUILD)/apfp $(BUILD)/apfp-fuse $(BUILD)/peer/nfsbench)

$(BUILD)/peer/nfsbench: tools/peer/nfsbench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 $(WARN) $< -o $@ $$(pkg-config --cflags --libs libnfs)

peer-deps:
	tools/peer/build.sh

bench-peer: peer-deps $(PEER_ESP) $(PEER_PROTO)
	$(PYTHON) -u tools/peer/peer.py all $(PEER_ARGS)

bench-peer-compare:
	$(PYTHON) -u tools/peer/peer.py compare $(PEER_ARGS)
