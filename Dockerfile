# One image for every tubewatch process: `docker run tubewatch:0.1.0 api|poller|changes|notifier`.
# Built by docker-compose.yml (services api, poller, notifier, and changes in its profile).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TUBEWATCH_DATA_DIR=/data

# An unprivileged user owns only the data directory (a named volume inherits its owner).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin tubewatch \
    && mkdir /data && chown tubewatch:tubewatch /data

WORKDIR /src
# The distribution's sources only (see .dockerignore); wheels exist for every dependency
# (confluent-kafka bundles librdkafka, psycopg[binary] bundles libpq), so no compiler.
COPY pyproject.toml README.md ./
COPY tubewatch ./tubewatch
COPY services ./services
RUN pip install ".[postgres]" && rm -rf /src/build

USER tubewatch
WORKDIR /home/tubewatch
EXPOSE 8000
ENTRYPOINT ["tubewatch"]
CMD ["--help"]
