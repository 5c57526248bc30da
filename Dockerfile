# syntax=docker/dockerfile:1
# Production image: a wheel built in a throw-away stage, installed into a slim runtime stage that
# has no compilers or build tools and runs as an unprivileged user. Same commands as `make`:
# `pip install .` and `vapi-calendar serve`.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# The folders pyproject's package-dir maps into the one `vapi_calendar` package.
COPY emulator ./emulator
COPY oauth ./oauth
COPY pipeline ./pipeline
COPY ports ./ports
COPY providers ./providers
COPY server ./server
COPY stores ./stores
COPY support ./support
COPY tools ./tools
# The project and every dependency as wheels, so the runtime stage installs offline.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home app
# Bind-mounted, not copied: the wheels never become a layer of the final image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels vapi-calendar
USER app
WORKDIR /app
# The SQLite default (DATABASE_URL unset) keeps its file and key here; mount a volume on it.
RUN mkdir -p /app/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["vapi-calendar", "serve", "--host", "0.0.0.0", "--port", "8000"]
