# imaginebot: one image for the bot (web playground, Discord, Slack, every provider).
#   docker build -t imaginebot .
#   docker run -p 8080:8080 -v imaginebot-data:/data imaginebot
# With no config it serves the playground with the offline sketch provider; mount a config at
# /config/config.toml (see config.example.toml) and pass tokens as environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY providers ./providers
COPY storage ./storage
RUN pip install . && useradd --system --home /data --uid 10001 imaginebot && mkdir -p /data /config \
    && chown imaginebot /data
COPY deploy/docker-config.toml /config/config.toml

USER imaginebot
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["imaginebot", "--log-json", "run", "--config", "/config/config.toml"]
