# The mlsdm-audit container image, which deploy/cronjob.yaml runs. Build it from the repository's
# top (a test keeps this tag, the CronJob's image and Cargo.toml's version in step):
#
#   docker build -t ghcr.io/neuron7x/mlsdm-audit:0.1.0 --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
#
# Two stages. The first compiles the binary (`.git` is not copied, so `--version` takes the commit
# from GIT_COMMIT). The final one is built FROM scratch: the binary, the shared libraries `ldd`
# says it loads, the CA certificates (rustls reads the system store for --endpoint and
# --prometheus), and passwd/group entries for UID/GID 65532; no shell, no package manager. It
# runs as 65532:65532 and writes nothing to its root file system, so it runs with
# readOnlyRootFilesystem: true (reports go to stdout, or to --output-file on a mounted volume).

# The build stage's base: the official Rust image. scripts/image-test.sh (CI, where no container
# registry is reachable) passes an image of the same contents assembled locally: Debian bookworm
# by debootstrap, with the machine's Rust toolchain mounted.
ARG BUILDER_IMAGE=rust:1.91-slim-bookworm
FROM ${BUILDER_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG GIT_COMMIT=unknown
ENV MLSDM_AUDIT_GIT_COMMIT=${GIT_COMMIT}
# The final stage's whole root file system is assembled by packaging/rootfs.sh, the script
# scripts/install-test.sh also runs (in CI) to run the binary inside it with chroot, as 65532,
# on a read-only mount.
# PROFILE=dev lets CI reuse its test build's artifacts (a mounted target/); images are release.
ARG PROFILE=release
RUN cargo build --profile "$PROFILE" --locked --bin mlsdm-audit \
 && out=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE") \
 && bash packaging/rootfs.sh "target/$out/mlsdm-audit" /rootfs \
 && /rootfs/usr/local/bin/mlsdm-audit --version

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mlsdm-audit"]
CMD ["--help"]
