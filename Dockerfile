# Microlend app image (production mode).
#
# python:3.11-slim because bolt11 2.2.0 does not install on Python 3.13+
# (pyproject.toml: requires-python >=3.11,<3.13).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The whole repository goes to /app and is installed *editable* on purpose:
# the app finds its Jinja templates and static files at the repository root
# (marketplace/web/state.py: REPO_ROOT / "templates", REPO_ROOT / "static"),
# beside the `marketplace` package, and they are not package data. A regular
# (non-editable) install into site-packages would leave them behind.
COPY . /app
RUN pip install -e . \
    && microlend --help >/dev/null

# Non-root user. Its primary group is 0 (root) so that it can reach the
# marketplace node's `lightning-rpc` socket, which docker-compose.yml makes
# group-accessible (rpc-file-mode=0660, network dir 0750, both owned by
# root:root inside the CLN container). Group 0 grants no privileges by itself.
RUN useradd --uid 10001 --gid 0 --home-dir /home/microlend --create-home \
        --shell /usr/sbin/nologin microlend \
    && mkdir -p /app/data \
    && chown 10001:0 /app/data

USER 10001:0

EXPOSE 8000

# `microlend db upgrade`, then `microlend serve --host 0.0.0.0 --port 8000`
# (any other command given to `docker run` / `docker compose run` is run as is).
ENTRYPOINT ["/bin/sh", "/app/docker/app-entrypoint.sh"]
