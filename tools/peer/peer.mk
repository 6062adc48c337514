# The Linux peer comparison (tools/peer/, docs/peer.md).  A benchmark, not a
# test: nothing here runs under `make test`.
#   make bench-peer                 full run: 16 workloads x 3 interleaved repetitions
#   make bench-peer SECS=3 REPS=1   quick run
#   make bench-peer ONLY='randread 4k,read 1M'   a subset (substrings of "DEV WORKLOAD BS qdN")
#   make bench-peer MODES=poll      only our polling mode
#   make bench-peer-compare         re-tabulate the last run (build/peer/runs.txt)
#   make peer-deps                  fetch and build the peer only (kernel, busybox, fio)
# Results: build/peer/results.md, results.txt, ratios.png; logs build/peer/*.log.
SECS  ?= 10
REPS  ?= 3
MODES ?= poll,irq
ONLY  ?=
PEER_ARGS = --secs $(SECS) --reps $(REPS) --modes '$(MODES)' --only '$(ONLY)'

.PHONY: bench-peer bench-peer-compare peer-deps

peer-deps:
	tools/peer/build.sh

bench-peer: peer-deps esp
	$(PYTHON) -u tools/peer/peer.py all $(PEER_ARGS)

bench-peer-compare:
	$(PYTHON) -u tools/peer/peer.py compare $(PEER_ARGS)
