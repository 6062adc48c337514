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
#   make bench-peer-compare         re-tabulate the last run (build/peer/runs.txt)
#   make peer-deps                  fetch and build the peer only (kernel, busybox, fio)
# Results: build/peer/results.md, results.txt, ratios.png (block table),
# fs-results.md, fs-results.txt, fs-ratios.png (filesystem table), net-results.md,
# net-results.txt (network table); logs build/peer/*.log.
SECS  ?= 10
REPS  ?= 3
MODES ?= poll,irq
ONLY  ?=
KIND  ?= blk,fs
FILES ?= 1000
FS_SIDES ?= ours,ext4,xfs,btrfs
NICS ?= virtio,e1000e
NET_SIDES ?= ours,linux
PEER_ARGS = --secs $(SECS) --reps $(REPS) --modes '$(MODES)' --only '$(ONLY)' --kind '$(KIND)' \
	--files $(FILES) --fs-sides '$(FS_SIDES)' --nics '$(NICS)' --net-sides '$(NET_SIDES)'

.PHONY: bench-peer bench-peer-compare peer-deps

# Our image is needed unless only Linux sides run (KIND=fs without ours in
# FS_SIDES, KIND=net without ours in NET_SIDES).
peer_comma := ,
peer_words = $(subst $(peer_comma), ,$(1))
peer_has = $(filter $(1),$(call peer_words,$(2)))
PEER_ESP = $(if $(call peer_has,blk,$(KIND))$(and $(call peer_has,fs,$(KIND)),$(call peer_has,ours,$(FS_SIDES)))$(and \
	$(call peer_has,net,$(KIND)),$(call peer_has,ours,$(NET_SIDES))),esp)

peer-deps:
	tools/peer/build.sh

bench-peer: peer-deps $(PEER_ESP)
	$(PYTHON) -u tools/peer/peer.py all $(PEER_ARGS)

bench-peer-compare:
	$(PYTHON) -u tools/peer/peer.py compare $(PEER_ARGS)
