# syntax=docker/dockerfile:1
# The operator image: a release build without the sandbox (the Microsoft emulator is the default-on
# cargo feature `sandbox`; --no-default-features leaves it out of production builds), on a
# distroless, non-root runtime. The binary needs no writable path: it runs with a read-only root
# filesystem (the Helm chart mounts a small /tmp and, for TenantSync's file sink, a volume).
#
#   docker build -t registry.example.com/gdap-operator:0.1.0 .
#
# Only Cargo.toml, Cargo.lock and src/ are needed (see .dockerignore); TLS is rustls, so the
# runtime needs no OpenSSL, only glibc and libgcc, which distroless/cc provides.

ARG RUST_VERSION=1.89
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin gdap-operator \
 && install -D -m 0755 target/release/gdap-operator /out/gdap-operator

# Debian 12 like the build stage, so the glibc the binary links against is there.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gdap-operator /usr/local/bin/gdap-operator
# The distroless "nonroot" user; the chart's securityContext runs as the same uid and gid.
USER 65532:65532
# /healthz, /readyz and /metrics (--metrics-address, 0.0.0.0:8080 by default).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gdap-operator"]
CMD ["run"]
LABEL org.opencontainers.image.title="gdap-operator" \
      org.opencontainers.image.description="Kubernetes operator for Microsoft GDAP relationships, app consents and tenant imports" \
      org.opencontainers.image.licenses="Apache-2.0"
