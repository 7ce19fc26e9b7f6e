# Production image: `python -m webapp serve`. Run `python -m webapp migrate` (or `alembic upgrade head`)
# as its own step before starting new app containers.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir webapp && echo '__version__ = "0"' > webapp/__init__.py \
    && pip install . \
    && pip uninstall -y webapp \
    && rm -rf webapp

COPY alembic.ini babel.cfg ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY webapp ./webapp
RUN pip install --no-deps -e . && python -m compileall -q webapp

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin webapp \
    && mkdir -p /app/var && chown webapp /app/var
USER webapp

ENV ENVIRONMENT=production
EXPOSE 8000
# Liveness here; route traffic by readiness, GET /readyz (database, schema at the newest migration, keys), at the
# load balancer or orchestrator (docs/deploy.md).
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# X-Forwarded-* is trusted from these proxies only: set it to your proxy's address (docs/deploy.md).
ENV FORWARDED_ALLOW_IPS=127.0.0.1
CMD ["python", "-m", "webapp", "serve", "--host", "0.0.0.0", "--port", "8000"]
