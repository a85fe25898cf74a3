# seedbank: two commands to start (see README.md)
GO       ?= go
BIN      ?= bin/seedbank
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
TESTFLAGS ?= -count=1 -timeout 14m

.PHONY: run demo build docker test test-race test-federation test-deploy bench bench-tracker lint fmt clean

## run: start a single-node site and tracker on embedded defaults (data in ./data)
run: build
	./$(BIN) serve

## demo: a three-node federation on 127.0.0.1 in one process; Ctrl-C stops it
demo: build
	./$(BIN) demo

## build: compile the seedbank binary into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/seedbank

## docker: FROM-scratch image seedbank:local (no registry needed)
docker:
	deploy/docker-build.sh

## test: the whole test suite (needs the tools .ci/run installs)
# One package at a time (-p 1): the e2e, deploy and cluster tests run real
# clients, containers and clusters whose timing suffers on 2 shared cores.
test:
	$(GO) vet ./...
	$(GO) test -p 1 $(TESTFLAGS) ./...

## test-race: the suite under the race detector
test-race:
	$(GO) test -race $(TESTFLAGS) ./...

## test-federation: only the three-process federation test (real clients, a node
## killed under a download, a rolling upgrade), with each step's timing; also in test
test-federation:
	$(GO) test $(TESTFLAGS) -run 'Federated|RollingUpgrade' -v ./e2e

## test-deploy: Docker cluster, systemd unit, nginx proxy, seedbox tests only
test-deploy:
	$(GO) test $(TESTFLAGS) ./deploy

## bench: Go benchmarks of the hot paths and the write path; figures, not verdicts
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

## bench-tracker: seedbank's tracker vs opentracker (HTTP new connection, keep-alive,
## UDP; 100,000 torrents x 3 peers; three rounds, medians), then tracker memory per
## peer. About 17 min; needs opentracker, taskset and (as root) setpriv. Not part of test.
bench-tracker:
	$(GO) build -o bin/trackerbench ./tools/trackerbench
	./bin/trackerbench -rounds 3 -out bin/bench-tracker.md
	./bin/trackerbench mem

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	staticcheck ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin
