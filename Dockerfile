# citebot: the Slack bot (`citebot serve`) with the bundled embedding and reader models.
# Not built on the machine this was written on (no container engine there); see
# docs/DEPLOYMENT.md. Build:  docker build -t citebot .
FROM python:3.11-slim

# CPU-only PyTorch first, from the index named by the build argument: left to resolve
# on its own, pip pulls a multi-GB CUDA build. Pass your CPU wheel index, or a pinned
# requirement your mirror serves, e.g.
#   docker build --build-arg TORCH_INDEX_URL=<your CPU wheel index> -t citebot .
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY citebot/ citebot/
COPY bot/ bot/
COPY index/ index/
COPY prompts/ prompts/
COPY config/ config/
RUN pip install --no-cache-dir . && rm -rf /src

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
