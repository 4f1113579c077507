# syntax=docker/dockerfile:1
# The airlock operator image: `docker build -t <registry>/airlock:0.1.0 .`
#
# Two stages: the builder turns the source into a wheel; the runtime installs only
# that wheel and its runtime dependencies (no dev/sandbox extras, no compiler, no
# source tree). The runtime writes nothing outside /tmp, so it runs with
# readOnlyRootFilesystem and an emptyDir at /tmp (the Helm chart mounts one).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="airlock" \
      org.opencontainers.image.description="Kubernetes operator that enforces AI incident containment" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/airlock-dev/airlock" \
      org.opencontainers.image.documentation="https://github.com/airlock-dev/airlock#readme"
# HOME points into /tmp: nothing may need a writable home on a read-only root.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /dist/ /dist/
# Bytecode is compiled here, at install time, so the read-only runtime never needs to write it.
RUN pip install /dist/airlock-*.whl \
    && rm -rf /dist
# A numeric non-root user (distroless "nonroot"), so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
WORKDIR /tmp
# 8080 /healthz, 9090 /metrics, 9443 admission webhook (when --webhook-port is given).
EXPOSE 8080 9090 9443
ENTRYPOINT ["airlock", "run"]
