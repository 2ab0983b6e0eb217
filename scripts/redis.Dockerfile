# A Redis image built from Debian's redis-server package, for scripts/container-check: the
# machines that run it reach apt and PyPI but no image registry, so docker.io's redis image cannot
# be pulled. Stands in for it in docker-compose.yml (REDIS_IMAGE=...): same port, same command.
#   podman build --pull=never --build-arg BASE=localhost/pybase:bookworm -f scripts/redis.Dockerfile scripts
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# Debian's package made the redis user; /data as the official image has it (nothing is saved there:
# docker-compose.yml turns persistence off).
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
# Without a config file, redis-server's protected mode refuses every client but loopback ones,
# and in a container the sandboxes are not loopback (the official image turns it off as well).
CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
