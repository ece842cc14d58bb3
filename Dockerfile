# One image for every tickpipe service; the service is the command:
#   docker run tickpipe feed binance --connections 2
# Settings come from TICKPIPE_* environment variables (see README.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TICKPIPE_HOME=/var/lib/tickpipe

WORKDIR /app
COPY pyproject.toml README.md ./
COPY orderbook ./orderbook
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY executor ./executor
COPY schemas ./schemas
COPY infra ./infra
# the venue stand-in that compose and the k8s base run in place of Binance (no third-party extra needed)
COPY sim_exchange ./sim_exchange
# `tickpipe backtest` against the cluster's archive (harness code: the services never import it)
COPY backtest ./backtest
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/tickpipe --create-home tickpipe

USER 10001
ENTRYPOINT ["tickpipe"]
CMD ["--help"]
