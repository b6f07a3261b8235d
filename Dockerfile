# syntax=docker/dockerfile:1
#
# One image for every process of Rehab Support; the command picks which one runs:
#   docker run IMAGE intake | referrals | funds | gateway     (default: gateway)
#   docker run IMAGE rehab audit verify                       (any other command runs as given)
#
# Two stages: the builder has compilers and installs the project with its pinned dependencies into a virtual
# environment; the final stage is the same slim Python with only that environment copied in, run as a non-root
# user. No compiler, no pip, no source tree, no tests, no secrets (see .dockerignore) in the final image.
#
# The base is pinned by version. For reproducible builds pin it by digest as well, e.g.
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm    # prints the digest
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
# and bump it when Debian or Python publish security fixes.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder -------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers, only for a dependency without a wheel for this platform (all of them have one on amd64 and arm64).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY kit ./kit
COPY ops ./ops
COPY gateway ./gateway
COPY services ./services

# The project and exactly the locked versions of its runtime dependencies (test tools are not installed).
# Byte-compiled here, because the final image's site-packages are read-only for the process.
RUN pip install -c requirements.lock . \
    && python -m compileall -q /opt/venv/lib \
    && pip uninstall -y pip

# ---- runtime -------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="rehab-support" \
      org.opencontainers.image.description="Rehab Support: intake, referrals, funds and the gateway (one image, the command picks the process)"

# A fixed, non-root uid/gid (Kubernetes runAsUser and docker-compose volume ownership rely on it). The state
# folder is the only place the process may write (in Kubernetes and compose it is an emptyDir / tmpfs).
RUN groupadd --system --gid 10001 rehab \
    && useradd --system --uid 10001 --gid rehab --no-create-home --home-dir /var/lib/rehab --shell /usr/sbin/nologin rehab \
    && install -d -o rehab -g rehab -m 0700 /var/lib/rehab \
    && python -m pip uninstall -y pip \
    && rm -rf /root/.cache

COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/rehab-entrypoint

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REHAB_ENVIRONMENT=production \
    REHAB_HOST=0.0.0.0 \
    REHAB_STATE_DIR=/var/lib/rehab

WORKDIR /var/lib/rehab
USER 10001:10001

# gateway 8000, intake 8101, referrals 8102, funds 8103 (only the gateway is ever published).
EXPOSE 8000 8101 8102 8103

# Health is checked by the orchestrator (compose healthcheck, Kubernetes probes) on the process's own port:
# GET /healthz (alive) and GET /readyz (ready).
ENTRYPOINT ["/usr/local/bin/rehab-entrypoint"]
CMD ["gateway"]
