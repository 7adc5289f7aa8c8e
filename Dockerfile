# The service image: `python -m service serve` on 0.0.0.0:8080.
#
# It runs as uid/gid 10001 (`app`), a user that owns nothing in the image, and needs to write
# nothing at run time: deploy/kubernetes/base/deployment.yaml sets runAsNonRoot (which needs
# the numeric USER below to verify it), runAsUser/runAsGroup 10001, readOnlyRootFilesystem:
# true, drops every capability and allowPrivilegeEscalation: false; its only writable path is
# a small emptyDir on /tmp, for a library that calls tempfile (the service itself uses none).
# What would otherwise write: bytecode caches (off: PYTHONDONTWRITEBYTECODE; pip compiled the
# installed package's .pyc at build time, owned by root), prometheus_client's multiprocess
# files (only when PROMETHEUS_MULTIPROC_DIR is set: never set it, each process serves its own
# /metrics), HOME (/nonexistent) and the working directory (an empty root-owned /app).
# tests/e2e/test_unprivileged.py runs the service that way: an unprivileged user, working
# directory, HOME and TMPDIR it cannot write.

# Build the wheel apart, so the runtime image holds neither the build tree nor a second copy of
# the sources on sys.path (the working directory comes first on it for `python -m`).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd
USER 10001:10001

ENV HOST=0.0.0.0 PORT=8080 HOME=/nonexistent
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"
# SIGTERM drains (see README): give it longer than SHUTDOWN_DEADLINE_SECONDS.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service", "serve"]
