# The sandbox as a container: gunicorn (one gevent worker) on 0.0.0.0:8080, as a non-root user.
#   docker build -t mypreferences-sandbox . && docker run --rm -p 127.0.0.1:8080:8080 mypreferences-sandbox
# Settings are SANDBOX_* environment variables (README, "Configuration"); seed files for
# SANDBOX_SEED_FILE are under /app/fixtures. Without a Docker engine: scripts/container-check.
ARG BASE=python:3.11-slim

# Build stage: install the project and its dependencies into a venv, then copy only the venv.
FROM ${BASE} AS build
WORKDIR /src
# README.md is read by the build (pyproject's `readme`).
COPY pyproject.toml README.md ./
COPY sandbox/ sandbox/
# Then drop what the runtime never uses: pip and setuptools (only needed to install), and
# pycountry's translations (22 MB; the sandbox uses the English names only).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/venv/bin/pip uninstall --yes --quiet setuptools pip \
    && rm -rf /opt/venv/lib/python3*/site-packages/pycountry/locales

# Runtime stage: the base image, the venv and the example fixtures.
FROM ${BASE}
RUN groupadd --system --gid 10001 sandbox \
    && useradd --system --no-log-init --uid 10001 --gid sandbox \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin sandbox
COPY --from=build /opt/venv /opt/venv
COPY fixtures/ /app/fixtures/
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SANDBOX_HOST=0.0.0.0 \
    SANDBOX_PORT=8080
# Numeric, so that runtimes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8080
# No curl in the image: python's urllib, on whatever SANDBOX_PORT the container was given.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SANDBOX_PORT', '8080') + '/_sandbox/health', timeout=4)"]
# Exec form: the server is PID 1 and gets SIGTERM itself (gunicorn stops within a second).
CMD ["mypreferences-sandbox"]
