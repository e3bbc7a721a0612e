# native-transcoder (the tus/media origin and the ffmpeg worker) with Debian's ffmpeg.
# Build from the repository root (the workspace):
#   docker build -f infra/k8s/native-transcoder.Dockerfile -t <registry>/streamgate-native-transcoder:<tag> .
# Run: `serve` or `work` plus the environment of docs/native-transcoder.md (origin.yaml, worker.yaml).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p native-transcoder \
    && install -m 0755 target/release/native-transcoder /usr/local/bin/native-transcoder

FROM debian:bookworm-slim
# ffmpeg brings ffprobe; tini forwards SIGTERM (the worker hands its job back on it) and reaps.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin streamgate \
    && mkdir -p /media && chown 10001:10001 /media
COPY --from=build /usr/local/bin/native-transcoder /usr/local/bin/native-transcoder
USER 10001:10001
ENV STREAMGATE_MEDIA_DIR=/media RUST_LOG=info
VOLUME ["/media"]
EXPOSE 3001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/native-transcoder"]
CMD ["--help"]
