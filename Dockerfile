# syntax=docker/dockerfile:1
# Rusta's image: a builder stage installs the pinned requirements into a virtualenv, a charts stage installs the
# dashboard's chart library from the npm registry; the final stage is python:3.11-slim with that virtualenv, the
# library's dist/ and the code, run as an unprivileged user. Nothing the admin pages load comes from var/.
#   docker build -t rusta .      then see docker-compose.yml for PostgreSQL, Redis and the Celery processes.

# The dashboard's chart library (uPlot): the Makefile's UPLOT_VERSION, which tests/rusta/test_docker_static.py
# checks this default against.
ARG UPLOT_VERSION=1.6.32

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A compiler only for the rare platform where a pinned package has no wheel; this stage is thrown away.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt


# `make vendor`'s npm install, here because var/ stays out of the build context; Node stays in this stage.
# `test -s` stops the build when a release moves the files the dashboard loads (metrics/dashboard/views.py).
FROM node:22-bookworm-slim AS charts
ARG UPLOT_VERSION
WORKDIR /static-vendor
RUN npm install --prefix . --no-audit --no-fund --no-save --loglevel=error "uplot@${UPLOT_VERSION}" \
 && test -s node_modules/uplot/dist/uPlot.iife.min.js \
 && test -s node_modules/uplot/dist/uPlot.min.css


FROM python:3.11-slim
# The chart library lives outside the /var/lib/rusta volume, so a volume made by an older image cannot hide it.
# The admin's own CSS and JS need nothing here: the admin listener serves static files through Django's finders
# (ASGIStaticFilesHandler in rusta/asgi.py), straight from the installed packages, without collectstatic.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=rusta.settings \
    RUSTA_VAR_DIR=/var/lib/rusta \
    RUSTA_STATIC_VENDOR_DIR=/opt/rusta/static-vendor
RUN groupadd --system rusta \
 && useradd --system --gid rusta --home-dir /var/lib/rusta --no-create-home --shell /usr/sbin/nologin rusta \
 && install -d -o rusta -g rusta -m 0750 /var/lib/rusta
COPY --from=builder /opt/venv /opt/venv
COPY --from=charts /static-vendor/node_modules/uplot/dist /opt/rusta/static-vendor/node_modules/uplot/dist
WORKDIR /app
# The code belongs to root: the gateway user can read it but not change it.
COPY . /app
RUN chmod 0755 /app/docker/entrypoint.sh \
 && python -m compileall -q /app -x '/(tests|bench)/'
# The embedded default (SQLite, generated secret key, Celery beat schedule) lives here when no
# DATABASE_URL / RUSTA_SECRET_KEY are given.
VOLUME ["/var/lib/rusta"]
USER rusta
EXPOSE 8000 8001
# No curl in slim images: ask the admin listener's /live with the interpreter we have.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8001/live', timeout=2).status != 200)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD []
