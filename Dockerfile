# citebot: the Slack bot (`citebot serve`) with the bundled embedding and reader models.
# Not built on the machine this was written on (no container engine there); see
# docs/DEPLOYMENT.md. Build:  docker build -t citebot .
FROM python:3.11-slim

# CPU PyTorch first, from PyTorch's CPU wheel index, falling back to pip's own indexes
# when that cannot be reached (deploy/install-torch; docs/DEPLOYMENT.md, "CPU PyTorch").
# A mirror:  docker build --build-arg CITEBOT_TORCH_INDEX=<your CPU wheel index> -t citebot .
ARG CITEBOT_TORCH="torch==2.13.0"
ARG CITEBOT_TORCH_INDEX="https://download.pytorch.org/whl/cpu"
COPY deploy/install-torch /tmp/install-torch
RUN /tmp/install-torch pip --no-cache-dir && rm /tmp/install-torch

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY citebot/ citebot/
COPY bot/ bot/
COPY index/ index/
COPY prompts/ prompts/
COPY config/ config/
# With PostgreSQL's driver: several pods share their Slack state there (deploy/k8s-scale-out).
RUN pip install --no-cache-dir ".[postgres]" && rm -rf /src

# A non-root user; the data directory (Chroma store, caches, Slack state) is a volume.
RUN useradd --create-home --uid 10001 citebot && mkdir -p /data /articles \
    && chown citebot:citebot /data /articles
USER citebot
WORKDIR /home/citebot
ENV CITEBOT_HOME=/data \
    CITEBOT_PORT=3000 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False
VOLUME ["/data"]
EXPOSE 3000

# GET /healthz is answered by `citebot serve` over HTTP (not in Socket Mode).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CITEBOT_PORT', '3000'), timeout=4)"

ENTRYPOINT ["citebot"]
CMD ["serve", "--host", "0.0.0.0"]
