#!/bin/sh
# Entrypoint of the Microlend app image (see Dockerfile).
#
# With no arguments: apply the database migrations, then serve on 0.0.0.0:8000.
# With arguments (e.g. `docker compose run --rm app microlend ledger verify`):
# run them instead.
set -eu

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

echo "[microlend] applying database migrations (microlend db upgrade)"
microlend db upgrade

echo "[microlend] serving on 0.0.0.0:8000"
exec microlend serve --host 0.0.0.0 --port 8000
