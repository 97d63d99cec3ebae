# syntax=docker/dockerfile:1
# The crm-bridge image: built here, run anywhere (deploy/k8s, deploy/compose).
#   docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t crm-bridge .
# `make test` lints this file (hadolint, tests/deploy.rs); no container engine
# runs where it is tested, so the build itself is not (README.md, Deploy).

# socket.io-client's browser build, which build.rs embeds for the dashboard
# (web/package-lock.json pins it).
FROM node:20.20.2-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

# The binary. librdkafka is built from source by rdkafka-sys (configure and
# make, from the image's toolchain) and links Debian's C libraries: the same
# packages as `make native`.
FROM rust:1.95.0-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      pkg-config libssl-dev libsasl2-dev libcurl4-openssl-dev libzstd-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
# The commit the build-info metric reports (build.rs reads it).
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
WORKDIR /src
COPY . .
COPY --from=web /src/web/node_modules web/node_modules
# Cache mounts keep crates and objects between builds; the binary is copied
# out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin crm-bridge \
 && cp target/release/crm-bridge /usr/local/bin/crm-bridge

# What runs: the binary, the C libraries it links (and Cyrus SASL's Kerberos
# plugin, loaded at run time), the system's CA roots, and the local schema
# registry that the default `schemas.local_dir` ("schemas") names.
FROM debian:12.12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libssl3 libsasl2-2 libsasl2-modules-gssapi-mit libcurl4 libzstd1 zlib1g ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY schemas/ schemas/
COPY --from=build /usr/local/bin/crm-bridge /usr/local/bin/crm-bridge
# A numeric user, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
# In a container both ports listen on every interface: the public one
# (Socket.IO, the dashboard, /client/..., /healthz) and the internal one
# (/metrics, /stats, /readyz, /healthz) for probes and Prometheus.
ENV CRM_BRIDGE_LISTEN=0.0.0.0:3000 \
    CRM_BRIDGE_INTERNAL_LISTEN=0.0.0.0:9090
EXPOSE 3000 9090
# SIGTERM starts the drain: /readyz 503, drain.delay_seconds, paced close.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/crm-bridge"]
