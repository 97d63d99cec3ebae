# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run native java test deps deploy-tools contract lint fuzz bench bench-replay bench-latency bench-typing bench-tracing bench-routing bench-rolling-restart

JVM_INSTALL := deploy/dev/install-jvm.sh

## `npm ci` only when a lock file changed: it rewrites node_modules, and
## build.rs watches a file there (each `npm ci` cost a rebuild of the bridge).
%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --silent

## Apache Kafka, the CRM topics, the bridge, the demo producer, the dashboard
## and a live watcher, on this machine (KAFKA_BROKERS=host:port: your cluster).
run: native java web/node_modules/.package-lock.json deploy/dev/node_modules/.package-lock.json
	bash deploy/dev/run.sh

MULTIARCH := $(shell gcc -print-multiarch)

## The C libraries librdkafka links against (see Cargo.toml), from Debian:
## OpenSSL, Cyrus SASL (and its Kerberos plugin, loaded at run time),
## libcurl, libzstd and zlib, with their headers and pkg-config.
native:
	$(call apt_install_stopped,pkg-config,/usr/bin/pkg-config)
	$(call apt_install_stopped,libssl-dev,/usr/include/openssl/ssl.h)
	$(call apt_install_stopped,libsasl2-dev,/usr/include/sasl/sasl.h)
	$(call apt_install_stopped,libsasl2-modules-gssapi-mit,/usr/lib/$(MULTIARCH)/sasl2/libgssapiv2.so)
	$(call apt_install_stopped,libcurl4-openssl-dev,/usr/include/$(MULTIARCH)/curl/curl.h)
	$(call apt_install_stopped,libzstd-dev,/usr/include/zstd.h)
	$(call apt_install_stopped,zlib1g-dev,/usr/include/zlib.h)

## Java 17 and Maven, which fetch and run Kafka and the registry (on the
## machine already, as a rule; from Debian's packages if not).
java:
	$(call apt_install_stopped,openjdk-17-jre-headless,/usr/bin/java)
	$(call apt_install_stopped,maven,/usr/bin/mvn)

## Installs Debian package $(1) unless file $(2) exists: non-interactive, and
## its service neither started (a policy-rc.d answering 101, "forbidden",
## stops the package starting it) nor enabled at boot.
define apt_install_stopped
	@test -e $(2) || { \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  policy=; [ -e /usr/sbin/policy-rc.d ] || { policy=1; \
	    printf '#!/bin/sh\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null; \
	    $$sudo chmod 755 /usr/sbin/policy-rc.d; }; \
	  install="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(1)"; \
	  $$install || { $$sudo apt-get update -q && $$install; }; status=$$?; \
	  [ -z "$$policy" ] || $$sudo rm -f /usr/sbin/policy-rc.d; \
	  ! command -v systemctl >/dev/null || $$sudo systemctl disable -q $(1) 2>/dev/null; \
	  exit $$status; }
endef

## Everything the tests need that the machine does not ship: the npm
## packages (socket.io-client's browser build for the dashboard, which the
## bridge builds in; the test drivers; playwright-core; the client package's
## React, jsdom, Testing Library, esbuild and TypeScript; @asyncapi/parser,
## which checks the contract document), Apache Kafka and
## Apicurio Registry (jars from Maven Central, cached in ~/.cache/crm-bridge),
## nginx (load-balancer tests), promtool (from the prometheus package: checks
## /metrics and the alert rules), Chromium (the dashboard's browser
## tests), installed but never started, and the deploy checks' tools.
deps: native java web/node_modules/.package-lock.json tests/client/node_modules/.package-lock.json \
      tests/browser/node_modules/.package-lock.json client/node_modules/.package-lock.json \
      tests/asyncapi/node_modules/.package-lock.json deploy-tools
	bash $(JVM_INSTALL) kafka >/dev/null
	bash $(JVM_INSTALL) registry >/dev/null
	$(call apt_install_stopped,nginx,/usr/sbin/nginx)
	$(call apt_install_stopped,prometheus,/usr/bin/promtool)
	$(call apt_install_stopped,chromium,/usr/bin/chromium)

DEPLOY_TOOLS := $(HOME)/.cache/crm-bridge/deploy-tools
KUSTOMIZE_VERSION := v5.7.1

## The deploy checks' tools (tests/deploy.rs), pinned, each made once per
## version: a venv of deploy/requirements.txt (hadolint, kubernetes-validate,
## check-jsonschema), made again only when the file's content changed (its
## copy in the venv says which it holds; a fresh clone's new timestamps
## alone do not), and kustomize, built from the Go module proxy (about a
## minute, once).
deploy-tools:
	@cmp -s deploy/requirements.txt $(DEPLOY_TOOLS)/venv/requirements.txt || { \
	  rm -rf $(DEPLOY_TOOLS)/venv && python3 -m venv $(DEPLOY_TOOLS)/venv && \
	  $(DEPLOY_TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check --no-deps \
	    -r deploy/requirements.txt && \
	  cp deploy/requirements.txt $(DEPLOY_TOOLS)/venv/requirements.txt; }
	@test -x $(DEPLOY_TOOLS)/kustomize-$(KUSTOMIZE_VERSION)/kustomize || \
	  GOBIN=$(DEPLOY_TOOLS)/kustomize-$(KUSTOMIZE_VERSION) \
	    go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@ln -sfn $(DEPLOY_TOOLS)/kustomize-$(KUSTOMIZE_VERSION)/kustomize $(DEPLOY_TOOLS)/kustomize

## The PrometheusRule of deploy/k8s, made from the alert rules (tests/deploy.rs
## fails while it is stale).
deploy/k8s/prometheus-rule.yaml: deploy/prometheus/crm-bridge-alerts.yml deploy/k8s/prometheus-rule.sh
	bash deploy/k8s/prometheus-rule.sh > $@

## The client contract, generated from the bridge's code (src/contract):
## the AsyncAPI 3 document and the client package's TypeScript declarations
## (tests/contract.rs fails while either is stale).
contract: native
	cargo run --quiet -- contract asyncapi > docs/asyncapi.json
	cargo run --quiet -- contract typescript > client/index.d.ts

## Formatting, clippy and rustdoc (private items too: the docs a newcomer
## reads), every warning an error; the lints themselves are Cargo.toml's.
lint: native
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --document-private-items --quiet

## Every test: lint, unit and property tests, integration tests against the
## real broker (Apache Kafka) and the official socket.io-client; the client
## package's own (client/test/*.test.mjs: the module's cursors and resumes,
## the React hooks in jsdom, the packed files, the types under tsc --strict).
test: deps lint
	node --test client/test/*.test.mjs
	cargo test --no-fail-fast

FUZZ_SECONDS ?= 60

## Fuzz the inbound parsers and the record decoder, FUZZ_SECONDS each (not part
## of `make test`). cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP on stable.
## New inputs go to fuzz/target/corpus; the checked-in seeds are fuzz/corpus.
fuzz: native
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for target in inbound_requests record_decoder; do \
	  mkdir -p target/corpus/$$target && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$target target/corpus/$$target corpus/$$target \
	    -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

CENTRIFUGO_VERSION := v6.9.1
CENTRIFUGO := $(HOME)/.cache/crm-bridge/bench-tools/centrifugo-$(CENTRIFUGO_VERSION)/centrifugo

## Centrifugo, the suite's Go peer, built from its Go module at a pinned
## version (about 2 minutes, once), its version stamped as a release's is.
$(CENTRIFUGO):
	GOBIN=$(dir $@) go install \
	  -ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=$(CENTRIFUGO_VERSION:v%=%)" \
	  github.com/centrifugal/centrifugo/v6@$(CENTRIFUGO_VERSION)

## The benchmark suite: crm-bridge against a Node peer (socket.io 4 + kafkajs,
## bench/peer) and Centrifugo (Go) under the same load; prints the table and
## writes bench/RESULTS.md.
## Needs about 20,000 open files (10,000 clients and the server's ends).
bench: deps bench/peer/node_modules/.package-lock.json $(CENTRIFUGO)
	ulimit -n 20000 && CENTRIFUGO=$(CENTRIFUGO) cargo bench --bench suite

## Replay catch-up of 100,000 events beside live delivery, in one run (release build).
bench-replay: deps
	cargo bench --bench replay

## Produce-to-receive latency of single records on an idle bridge (release build).
bench-latency: deps
	cargo bench --bench latency

## Typing latency to a user on the same node and on another node (via Kafka).
bench-typing: deps
	cargo bench --bench typing

## Routing cost per record: the subscription index vs socket.io-style rooms (no broker).
bench-routing: native
	cargo bench --bench routing

## Live delivery rate with traces off vs on at the default sampling (release build).
bench-tracing: deps
	cargo bench --bench tracing

## A rolling restart of two nodes behind nginx with 2,000 clients under load,
## drain on vs off in one run: nothing lost or repeated, time until all resumed.
## Needs about 10,000 open files (the clients, nginx's two ends, the nodes').
bench-rolling-restart: deps
	ulimit -n 20000 && cargo bench --bench rolling_restart
