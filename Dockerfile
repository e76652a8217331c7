# Production image: the service only. Redis comes from REDIS_URL (see compose.yaml).
# Not built by this project's CI (no Docker engine there); `docker compose up` builds it.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY agent ./agent
COPY session_policy ./session_policy
COPY server ./server
COPY langgraph.json ./
RUN uv sync --frozen --no-default-groups

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY --from=build --chown=app:app /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"
CMD ["weather-agent", "serve"]
