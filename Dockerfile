# naftiko in a container: slim Python 3.11, a non-root user, `naftiko-run` as the entry point.
#
#   docker build -t naftiko .
#   # the baked capability (needs its API key from the environment):
#   docker run --rm -p 8080:8080 -p 9090:9090 -e METRONOME_API_KEY naftiko
#   # your own capability, mounted read-only:
#   docker run --rm -p 8080:8080 -p 9090:9090 -p 9191:9191 \
#     -v "$PWD/my-capability.yaml:/app/capabilities/my-capability.yaml:ro" \
#     naftiko /app/capabilities/my-capability.yaml
#
# Health probes, secrets, MCP Host checks and Kubernetes: docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package from this repository; every native dependency ships wheels for amd64 and
# arm64, so no compiler is installed. The sources are removed once installed.
COPY pyproject.toml README.md requirements.lock /tmp/naftiko/
COPY src /tmp/naftiko/src
RUN pip install -c /tmp/naftiko/requirements.lock /tmp/naftiko && rm -rf /tmp/naftiko

# A fixed numeric uid/gid, so Kubernetes `runAsNonRoot` can verify it.
RUN groupadd --system --gid 10001 naftiko \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin naftiko

# Capabilities are baked here and owned by root: the runtime user reads them, never writes.
# Mount your own over this directory (or a file in it) with -v / a ConfigMap.
WORKDIR /app
COPY capabilities /app/capabilities

USER 10001:10001

# REST, MCP and control adapters (the ports the shipped capabilities and docs use).
EXPOSE 8080 9090 9191

# Liveness from the capability's control adapter (`- type: control` with `port: 9191` in its
# exposes). Without one, point NAFTIKO_HEALTH_URL at a cheap route of yours, or run with
# --no-healthcheck; Kubernetes ignores this and uses the probes in docs/deployment.md.
ENV NAFTIKO_HEALTH_URL=http://127.0.0.1:9191/health/live
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['NAFTIKO_HEALTH_URL'], timeout=4)"]

# Every adapter on all interfaces: inside a container, loopback is unreachable from outside.
# Arguments after the image name replace CMD (a later --address wins over this one).
ENTRYPOINT ["naftiko-run", "--address", "0.0.0.0"]
CMD ["/app/capabilities/metronome-customers.yaml"]
