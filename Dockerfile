# syntax=docker/dockerfile:1
#
# The Rust binaries `gateway` and `worker` in one slim image:
#
#   docker build -t bullmq-wire .
#   docker run --rm bullmq-wire gateway --help
#   docker run --rm bullmq-wire worker --help
#
# There is no ENTRYPOINT: the command names the binary (docker-compose.yml
# runs `gateway` in one service and `worker demo data analysis` in another).
# The Node image of the stack (Node worker, Bull Board, dev tokens) is
# deploy/node/Dockerfile.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- build
FROM ${RUST_IMAGE} AS build
WORKDIR /src

# 1. Dependencies only. This layer depends on nothing but the manifests and
#    Cargo.lock, so editing a .rs file does not rebuild the ~300 crates
#    underneath. Every workspace member gets empty stand-in targets (cargo
#    must be able to load the whole workspace, explicit [[test]] paths
#    included), the dependencies are compiled, and the stand-ins' own
#    artifacts are cleaned so that step 2 always recompiles the real code
#    (COPY keeps the files' old modification times, which cargo would
#    otherwise take as "up to date").
COPY Cargo.toml Cargo.lock ./
COPY bullmq-rs/Cargo.toml bullmq-rs/
COPY worker/Cargo.toml worker/
COPY gateway/Cargo.toml gateway/
COPY interop-tests/Cargo.toml interop-tests/
RUN set -eu; \
    for member in bullmq-rs worker gateway interop-tests; do \
        mkdir -p "$member/src"; \
        : > "$member/src/lib.rs"; \
    done; \
    echo 'fn main() {}' > worker/src/main.rs; \
    echo 'fn main() {}' > gateway/src/main.rs; \
    echo 'fn main() {}' > bullmq-rs/build.rs; \
    mkdir -p bullmq-rs/tests/it gateway/tests/it; \
    : > bullmq-rs/tests/it/main.rs; \
    : > gateway/tests/it/main.rs; \
    cargo build --release --locked -p gateway -p worker; \
    cargo clean --release -p bullmq-wire -p worker -p gateway -p interop-tests; \
    rm -rf bullmq-rs worker gateway interop-tests

# 2. The real sources (see .dockerignore for what stays out). bullmq-rs/lua
#    is a symlink to ../lua, so lua/ comes along at the root.
COPY lua lua
COPY bullmq-rs bullmq-rs
COPY worker worker
COPY gateway gateway
COPY interop-tests/Cargo.toml interop-tests/Cargo.toml
COPY interop-tests/src interop-tests/src
RUN set -eu; \
    cargo build --release --locked -p gateway -p worker; \
    mkdir -p /out; \
    cp target/release/gateway target/release/worker /out/; \
    /out/gateway --version; \
    /out/worker --version

# -------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: rediss:// and other TLS peers; curl: the compose health
# check of the gateway (GET /healthz).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /app app
COPY --from=build /out/gateway /out/worker /usr/local/bin/
USER app
WORKDIR /app
ENV LISTEN_ADDR=0.0.0.0:8443
EXPOSE 8443
CMD ["gateway", "--help"]
