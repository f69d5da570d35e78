# syntax=docker/dockerfile:1.7
# Lineup's image. Two targets share one build:
#   docker build --target cpu -t lineup:cpu .
#   docker build --target gpu -t lineup:gpu .   (run with --gpus all)
# PyPI's torch wheels carry their own CUDA libraries, so both targets start
# from the same slim Python; the GPU one only asks the NVIDIA runtime for a GPU.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /srv/lineup
# Dependencies first, so code changes do not reinstall torch.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra postgres --no-install-project
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
COPY models ./models
RUN uv sync --frozen --no-dev --extra postgres

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN useradd --create-home --uid 10001 lineup \
    && mkdir -p /var/lib/lineup \
    && chown lineup:lineup /var/lib/lineup
WORKDIR /srv/lineup
COPY --from=build --chown=lineup:lineup /srv/lineup /srv/lineup
ENV PATH="/srv/lineup/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    LINEUP_DATA_DIR=/var/lib/lineup \
    LINEUP_MODELS_DIR=/srv/lineup/models \
    LINEUP_HOST=0.0.0.0 \
    LINEUP_PORT=8000
USER lineup
VOLUME ["/var/lib/lineup"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
CMD ["lineup", "serve"]

FROM runtime AS cpu
ENV LINEUP_DEVICE=cpu

FROM runtime AS gpu
ENV LINEUP_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
