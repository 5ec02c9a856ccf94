# syntax=docker/dockerfile:1
# Rusta's image: a builder stage installs the pinned requirements into a virtualenv; the final stage is
# python:3.11-slim with that virtualenv and the code, run as an unprivileged user.
#   docker build -t rusta .      then see docker-compose.yml for PostgreSQL, Redis and the Celery processes.

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


FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=rusta.settings \
    RUSTA_VAR_DIR=/var/lib/rusta
RUN groupadd --system rusta \
 && useradd --system --gid rusta --home-dir /var/lib/rusta --no-create-home --shell /usr/sbin/nologin rusta \
 && install -d -o rusta -g rusta -m 0750 /var/lib/rusta
COPY --from=builder /opt/venv /opt/venv
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
