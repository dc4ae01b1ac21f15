#!/usr/bin/env bash
# Start wrapper for the marketplace's Core Lightning node (elementsproject/lightningd).
#
# The app container runs as a non-root user (uid 10001, gid 0) and must reach
# lightningd's JSON-RPC socket, which the image keeps at
#   $LIGHTNINGD_DATA/$LIGHTNINGD_NETWORK/lightning-rpc   (/root/.lightning/regtest/lightning-rpc)
# lightningd creates that network directory with mode 0700 if it is missing,
# and creates the socket with mode --rpc-file-mode (0600 by default). So before
# handing over to the image's own entrypoint we create the directory ourselves
# with mode 0750 (root:root); docker-compose.yml passes --rpc-file-mode=0660.
# Group 0 can then traverse the directory and use the socket, while hsm_secret
# (mode 0400) and the node's database stay unreadable to it.
set -euo pipefail

: "${LIGHTNINGD_DATA:=/root/.lightning}"
: "${LIGHTNINGD_NETWORK:=regtest}"

netdir="${LIGHTNINGD_DATA}/${LIGHTNINGD_NETWORK}"
mkdir -p "$netdir"
chmod 0750 "$netdir"
echo "[cln-marketplace] network dir ${netdir} ready (mode 0750); RPC socket will be ${netdir}/lightning-rpc"

# The image's entrypoint (tools/docker-entrypoint.sh in the CLN repo, copied to
# /entrypoint.sh) runs `lightningd --network=$LIGHTNINGD_NETWORK "$@"`.
if [ -f /entrypoint.sh ]; then
    exec bash /entrypoint.sh "$@"
fi
echo "[cln-marketplace] /entrypoint.sh not found; starting lightningd directly"
exec lightningd --network="${LIGHTNINGD_NETWORK}" "$@"
