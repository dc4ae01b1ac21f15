#!/usr/bin/env bash
# One-shot regtest setup for the docker-compose stack (see docs/production.md).
#
#   docker compose run --rm init
#
# Runs in a container of the elementsproject/lightningd image (it ships
# lightning-cli, bitcoin-cli and jq) with both nodes' lightning dirs mounted:
#   1. waits for bitcoind and both Core Lightning nodes;
#   2. if cln-wallet already has a CHANNELD_NORMAL channel with cln-marketplace,
#      says so and stops (safe to run again);
#   3. creates (or loads) a bitcoind wallet "miner";
#   4. mines 101 blocks to a fresh on-chain address of cln-wallet
#      (`lightning-cli newaddr`), so one coinbase output is mature;
#   5. connects cln-wallet to cln-marketplace (host cln-marketplace, port 9735);
#   6. funds a channel cln-wallet -> cln-marketplace of CHANNEL_SAT sat, pushing
#      PUSH_MSAT to the marketplace so that it has outbound liquidity too;
#   7. mines 6 blocks and waits until listpeerchannels shows CHANNELD_NORMAL.
#
# Every value below can be overridden through the environment.
set -euo pipefail

: "${BITCOIN_RPC_HOST:=bitcoind}"
: "${BITCOIN_RPC_PORT:=18443}"
: "${BITCOIN_RPC_USER:?BITCOIN_RPC_USER is required}"
: "${BITCOIN_RPC_PASSWORD:?BITCOIN_RPC_PASSWORD is required}"
: "${MARKETPLACE_LIGHTNING_DIR:=/cln/marketplace}"
: "${WALLET_LIGHTNING_DIR:=/cln/wallet}"
: "${MARKETPLACE_HOST:=cln-marketplace}"
: "${MARKETPLACE_PORT:=9735}"
: "${MINER_WALLET:=miner}"
# 5,000,000 sat channel; 2,000,000 sat of it pushed to the marketplace side.
: "${CHANNEL_SAT:=5000000}"
: "${PUSH_MSAT:=2000000000}"
: "${WAIT_TIMEOUT_S:=180}"
# Explicit funding-tx feerate: regtest bitcoind has no fee estimates to offer.
: "${FUNDING_FEERATE:=2500perkb}"

log() { printf '[init-regtest] %s\n' "$*"; }
die() { printf '[init-regtest] ERROR: %s\n' "$*" >&2; exit 1; }

btc() {
    bitcoin-cli -regtest \
        -rpcconnect="$BITCOIN_RPC_HOST" -rpcport="$BITCOIN_RPC_PORT" \
        -rpcuser="$BITCOIN_RPC_USER" -rpcpassword="$BITCOIN_RPC_PASSWORD" "$@"
}
ln_market() { lightning-cli --network=regtest --lightning-dir="$MARKETPLACE_LIGHTNING_DIR" "$@"; }
ln_wallet() { lightning-cli --network=regtest --lightning-dir="$WALLET_LIGHTNING_DIR" "$@"; }

# poll SECONDS COMMAND...: retry COMMAND once a second; status 1 if it still
# fails after SECONDS.
poll() {
    local limit=$1
    shift
    local waited=0
    until "$@" >/dev/null 2>&1; do
        if [ "$waited" -ge "$limit" ]; then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# wait_until DESCRIPTION COMMAND...: poll for WAIT_TIMEOUT_S seconds, or fail.
wait_until() {
    local what=$1
    shift
    poll "$WAIT_TIMEOUT_S" "$@" || die "timed out after ${WAIT_TIMEOUT_S}s waiting for ${what}"
}

# States of every channel cln-wallet has with the marketplace node, space-separated.
channel_states() {
    ln_wallet listpeerchannels "$MARKET_ID" | jq -r '[.channels[]?.state] | join(" ")'
}
channel_is_normal() { [[ " $(channel_states) " == *" CHANNELD_NORMAL "* ]]; }
channel_is_opening() { [[ "$(channel_states)" == *AWAITING_LOCKIN* ]]; }

# Both nodes have processed every block bitcoind has.
nodes_synced() {
    local tip
    tip=$(btc getblockcount)
    [ "$(ln_wallet getinfo | jq -r .blockheight)" = "$tip" ] &&
        [ "$(ln_market getinfo | jq -r .blockheight)" = "$tip" ]
}

# Confirmed (spendable) on-chain funds of cln-wallet, in msat.
wallet_confirmed_msat() {
    ln_wallet listfunds | jq '[.outputs[]? | select(.status == "confirmed") | .amount_msat] | add // 0'
}
wallet_has_funds() { [ "$(wallet_confirmed_msat)" -ge "$NEEDED_MSAT" ]; }

miner_address() { btc -rpcwallet="$MINER_WALLET" getnewaddress; }

mine() {
    local blocks=$1
    log "mining ${blocks} block(s)"
    btc generatetoaddress "$blocks" "$(miner_address)" >/dev/null
    wait_until "both nodes to reach the chain tip" nodes_synced
}

summary() {
    log "channel states (cln-wallet's view): $(channel_states)"
    log "cln-wallet      to_us_msat: $(ln_wallet listpeerchannels "$MARKET_ID" | jq -r '[.channels[]? | select(.state == "CHANNELD_NORMAL") | .to_us_msat] | add // 0')"
    log "cln-marketplace to_us_msat: $(ln_market listpeerchannels "$WALLET_ID" | jq -r '[.channels[]? | select(.state == "CHANNELD_NORMAL") | .to_us_msat] | add // 0')"
}

# --- 1. wait for the daemons ---------------------------------------------------
log "waiting for bitcoind at ${BITCOIN_RPC_HOST}:${BITCOIN_RPC_PORT}"
wait_until "bitcoind RPC" btc getblockchaininfo
log "waiting for cln-marketplace (${MARKETPLACE_LIGHTNING_DIR}/regtest/lightning-rpc)"
wait_until "cln-marketplace RPC" ln_market getinfo
log "waiting for cln-wallet (${WALLET_LIGHTNING_DIR}/regtest/lightning-rpc)"
wait_until "cln-wallet RPC" ln_wallet getinfo

MARKET_ID=$(ln_market getinfo | jq -r .id)
WALLET_ID=$(ln_wallet getinfo | jq -r .id)
NEEDED_MSAT=$(( (CHANNEL_SAT + 100000) * 1000 ))
log "cln-marketplace id: ${MARKET_ID}"
log "cln-wallet      id: ${WALLET_ID}"

# --- 2. already done? ----------------------------------------------------------
if channel_is_normal; then
    log "a CHANNELD_NORMAL channel cln-wallet -> cln-marketplace already exists; nothing to do"
    summary
    exit 0
fi

# --- 3. bitcoind wallet --------------------------------------------------------
if btc listwallets | jq -e --arg w "$MINER_WALLET" 'index($w) != null' >/dev/null; then
    log "bitcoind wallet '${MINER_WALLET}' is loaded"
elif btc loadwallet "$MINER_WALLET" >/dev/null 2>&1; then
    log "loaded bitcoind wallet '${MINER_WALLET}'"
else
    log "creating bitcoind wallet '${MINER_WALLET}'"
    btc createwallet "$MINER_WALLET" >/dev/null
fi

if channel_is_opening; then
    log "a channel is already being opened (state: $(channel_states)); skipping funding"
else
    # --- 4. fund cln-wallet on chain -------------------------------------------
    if wallet_has_funds; then
        log "cln-wallet already has $(wallet_confirmed_msat) msat confirmed on chain"
    else
        address=$(ln_wallet newaddr | jq -r '.bech32 // .p2tr')
        [ -n "$address" ] && [ "$address" != "null" ] || die "cln-wallet newaddr returned no address"
        log "mining 101 blocks to cln-wallet address ${address}"
        btc generatetoaddress 101 "$address" >/dev/null
        wait_until "both nodes to reach the chain tip" nodes_synced
        log "waiting for cln-wallet to list the mature coinbase output as confirmed"
        if ! poll 60 wallet_has_funds; then
            # Fallback: pay cln-wallet from the bitcoind wallet instead.
            log "cln-wallet shows no spendable coinbase; sending 1 BTC from bitcoind wallet '${MINER_WALLET}'"
            mine 101
            btc -rpcwallet="$MINER_WALLET" sendtoaddress "$address" 1 >/dev/null
            mine 1
            wait_until "cln-wallet's confirmed funds" wallet_has_funds
        fi
        log "cln-wallet has $(wallet_confirmed_msat) msat confirmed on chain"
    fi

    # --- 5. connect ------------------------------------------------------------
    log "connecting cln-wallet to cln-marketplace at ${MARKETPLACE_HOST}:${MARKETPLACE_PORT}"
    ln_wallet connect "$MARKET_ID" "$MARKETPLACE_HOST" "$MARKETPLACE_PORT" >/dev/null

    # --- 6. open the channel ---------------------------------------------------
    log "funding a ${CHANNEL_SAT} sat channel cln-wallet -> cln-marketplace (push ${PUSH_MSAT} msat)"
    pushed=yes
    funding=$(mktemp)
    if ! ln_wallet -k fundchannel id="$MARKET_ID" amount="$CHANNEL_SAT" \
            feerate="$FUNDING_FEERATE" push_msat="$PUSH_MSAT" >"$funding" 2>&1; then
        log "fundchannel with push_msat failed: $(cat "$funding")"
        log "retrying without push_msat (the marketplace's share is sent by xkeysend once the channel is up)"
        ln_wallet -k fundchannel id="$MARKET_ID" amount="$CHANNEL_SAT" \
            feerate="$FUNDING_FEERATE" >"$funding"
        pushed=no
    fi
    log "funding txid: $(jq -r .txid "$funding")"
    rm -f "$funding"
fi

# --- 7. confirm and wait for CHANNELD_NORMAL ------------------------------------
mine 6
log "waiting for CHANNELD_NORMAL"
waited=0
until channel_is_normal; do
    if [ "$waited" -ge "$WAIT_TIMEOUT_S" ]; then
        die "channel not CHANNELD_NORMAL after ${WAIT_TIMEOUT_S}s (states: $(channel_states))"
    fi
    # A node that lags a block behind sometimes needs one more to lock in.
    if [ $((waited % 20)) -eq 19 ]; then
        mine 1
    fi
    sleep 1
    waited=$((waited + 1))
done
log "channel is CHANNELD_NORMAL"

if [ "${pushed:-yes}" = no ] && [ "$PUSH_MSAT" -gt 0 ]; then
    log "sending ${PUSH_MSAT} msat to cln-marketplace by xkeysend (outbound liquidity for withdrawals)"
    ln_wallet xkeysend "$MARKET_ID" "$PUSH_MSAT" >/dev/null
fi

summary
log "done: the marketplace node can now receive deposits and repayments from cln-wallet"
