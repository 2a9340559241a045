# sharebench container image: build the release binary, ship it in a small runtime image.
#
#   docker build -t ghcr.io/<you>/sharebench:0.1.0 .
#   docker push ghcr.io/<you>/sharebench:0.1.0
#
# The image holds no CUDA: libcuda.so and nvidia-cuda-mps-control come from the node through the NVIDIA
# container runtime (NVIDIA_DRIVER_CAPABILITIES=compute,utility below), and the kernels are embedded in the
# binary as PTX that the node's driver compiles. It runs as an unprivileged user with a read-only root.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY bench bench
COPY kernels kernels
RUN cargo build --release --locked --bin sharebench \
 && strip target/release/sharebench

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sharebench /usr/local/bin/sharebench
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sharebench"]
CMD ["--help"]
