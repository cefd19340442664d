# Builds the pgvigil binary in a Rust builder stage and ships it in a slim Debian runtime
# image that runs as a non-root user.

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole context (see .dockerignore): Cargo.toml names bench targets whose files must
# exist for the manifest to load, and a narrower copy would silently go stale.
COPY . .
RUN cargo build --release --locked --bin pgvigil

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# The audit directory is created here and owned by the runtime user so that a named volume
# mounted on it starts out writable.
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin pgvigil \
    && mkdir -p /etc/pgvigil /var/log/pgvigil \
    && chown pgvigil:pgvigil /var/log/pgvigil
COPY --from=builder /src/target/release/pgvigil /usr/local/bin/pgvigil
USER pgvigil
EXPOSE 6432
ENTRYPOINT ["pgvigil"]
CMD ["serve", "--config", "/etc/pgvigil/pgvigil.yaml"]
