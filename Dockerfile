# syntax=docker/dockerfile:1
#
# The ecr-preflight image, for machines with a container engine:
#
#   make image                      # picks docker, podman or buildah when one can build
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) -t ecr-preflight:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 ...   # both platforms
#
# Without a container engine `make image` builds the same image with
# internal/imagebuild (go-containerregistry, no base image pulled): same
# binary flags, user, entrypoint, cmd, working directory, SSL_CERT_FILE and
# labels. TestDockerfileMatchesGoBuilder keeps the two in step: change both.
#
# Pin the two base images by digest (@sha256:...) in your own builds.

ARG GO_VERSION=1.26.8

# The builder runs on the build machine's platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-trixie AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no libc in the runtime image), reproducible paths, baseline
# instruction set so it runs on every node of the architecture.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} GOAMD64=v1 GOARM64=v8.0 \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/ecr-preflight/ecr-preflight/internal/cli.version=${VERSION} -X github.com/ecr-preflight/ecr-preflight/internal/cli.commit=${COMMIT}" \
      -o /out/ecr-preflight ./cmd/ecr-preflight

# distroless static: CA certificates, /etc/passwd with nonroot (65532),
# /tmp, no shell, no package manager.
FROM gcr.io/distroless/static-debian13:nonroot
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.title="ecr-preflight" \
      org.opencontainers.image.description="Kubernetes admission webhook that catches ECR images the nodes cannot pull" \
      org.opencontainers.image.source="https://github.com/ecr-preflight/ecr-preflight" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Owned by root, not writable by the nonroot user.
COPY --from=build /out/ecr-preflight /ecr-preflight
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/ecr-preflight"]
CMD ["serve"]
