"""Node and channel methods: getinfo, listpeerchannels, listfunds, connect, fundchannel, close."""
from __future__ import annotations

import sqlite3
from typing import Any

from lightning.devnode import params as p
from lightning.devnode.network import (
    HOP_FEE_BASE_MSAT,
    HOP_FEE_PPM,
    NETWORK,
    VERSION,
    HostedNode,
    Network,
    random_hex,
    reserve_msat,
)
from lightning.devnode.rpcerror import (
    CONNECT_ALL_ADDRESSES_FAILED,
    CONNECT_NO_KNOWN_ADDRESS,
    FUND_CANNOT_AFFORD,
    FUNDING_PEER_NOT_CONNECTED,
    FUNDING_UNKNOWN_PEER,
    LIGHTNINGD,
    RpcFailure,
)

Json = dict[str, Any]
FEATURES = {"init": "800898880a8a59a1", "node": "808898880a8a59a1", "channel": "",
            "invoice": "02000002024100"}
CHANNEL_TYPE = {"bits": [12, 22], "names": ["static_remotekey/even", "anchors/even"]}
U64_MAX = 18446744073709551615


def _channels_of(net: Network, node: HostedNode) -> list[dict[str, Any]]:
    return net.store.all(
        "SELECT * FROM channels WHERE opener = ? OR peer = ? ORDER BY id", (node.name, node.name)
    )


def _ours(ch: dict[str, Any], name: str) -> int:
    return int(ch["opener_msat"] if ch["opener"] == name else ch["total_msat"] - ch["opener_msat"])


def _peers(net: Network, node: HostedNode) -> list[str]:
    return [r["peer"] for r in net.store.all("SELECT peer FROM peers WHERE node = ?", (node.name,))]


GETINFO_PARAMS: p.Spec = ([], set(), {})


def getinfo(net: Network, node: HostedNode, args: Json) -> Json:
    channels = _channels_of(net, node)
    active = sum(1 for c in channels if c["state"] == "CHANNELD_NORMAL")
    fees = net.store.one("SELECT fees_collected_msat FROM nodes WHERE name = ?", (node.name,))
    return {
        "id": node.node_id,
        "alias": node.name,
        "color": node.node_id[:6],
        "num_peers": len(_peers(net, node)),
        "num_pending_channels": 0,
        "num_active_channels": active,
        "num_inactive_channels": 0,
        "address": [],
        "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": node.port}],
        "version": VERSION,
        "blockheight": net.blockheight(),
        "network": NETWORK,
        "fees_collected_msat": int(fees["fees_collected_msat"]) if fees else 0,
        "lightning-dir": str(net.data_dir / node.name),
        "our_features": FEATURES,
    }


def _policy() -> Json:
    return {"htlc_minimum_msat": 0, "htlc_maximum_msat": 990000000, "cltv_expiry_delta": 6,
            "fee_base_msat": HOP_FEE_BASE_MSAT, "fee_proportional_millionths": HOP_FEE_PPM}


def _channel_json(net: Network, node: HostedNode, ch: dict[str, Any]) -> Json:
    peer_name = ch["peer"] if ch["opener"] == node.name else ch["opener"]
    ours = _ours(ch, node.name)
    total = int(ch["total_msat"])
    reserve = reserve_msat(total)
    opener_is_us = ch["opener"] == node.name
    normal = ch["state"] == "CHANNELD_NORMAL"
    item: Json = {
        "peer_id": net.nodes[peer_name].node_id,
        "peer_connected": True,
        "reestablished": True,
        "channel_type": CHANNEL_TYPE,
        "ignore_fee_limits": True,
        "updates": {"local": _policy(), "remote": _policy()},
        "state": ch["state"],
        "scratch_txid": ch["funding_txid"][::-1],
        "last_tx_fee_msat": 1735000,
        "lost_state": False,
        "feerate": {"perkw": 1250, "perkb": 5000},
        "owner": "channeld" if normal else "onchaind",
        "short_channel_id": ch["short_channel_id"],
        "direction": 0 if opener_is_us else 1,
        "channel_id": ch["channel_id"],
        "funding_txid": ch["funding_txid"],
        "funding_outnum": 0,
        "private": False,
        "opener": "local" if opener_is_us else "remote",
    }
    if ch["closer"] is not None:
        item["closer"] = "local" if ch["closer"] == node.name else "remote"
    item.update({
        "alias": {"local": f"{ch['id']}x{ch['id']}x1", "remote": f"{ch['id']}x{ch['id']}x2"},
        "features": ["option_static_remotekey", "option_anchors"],
        "funding": {
            "local_funds_msat": int(ch["opener_msat"]) if opener_is_us else 0,
            "remote_funds_msat": 0 if opener_is_us else int(ch["opener_msat"]),
            "pushed_msat": 0,
        },
        "to_us_msat": ours,
        "min_to_us_msat": ours,
        "max_to_us_msat": ours,
        "total_msat": total,
        "fee_base_msat": HOP_FEE_BASE_MSAT,
        "fee_proportional_millionths": HOP_FEE_PPM,
        "dust_limit_msat": 546000,
        "their_max_htlc_value_in_flight_msat": U64_MAX,
        "our_max_htlc_value_in_flight_msat": U64_MAX,
        "their_reserve_msat": reserve,
        "our_reserve_msat": reserve,
        "spendable_msat": max(0, ours - reserve) if normal else 0,
        "receivable_msat": max(0, total - ours - reserve) if normal else 0,
        "minimum_htlc_in_msat": 0,
        "minimum_htlc_out_msat": 0,
        "maximum_htlc_out_msat": 990000000,
        "their_to_self_delay": 6,
        "our_to_self_delay": 6,
        "max_accepted_htlcs": 483,
        "state_changes": [],
        "status": [f"{ch['state']}:Channel ready for use." if normal else f"{ch['state']}:Closed."],
        "in_payments_offered": 0,
        "in_offered_msat": 0,
        "in_payments_fulfilled": 0,
        "in_fulfilled_msat": 0,
        "out_payments_offered": 0,
        "out_offered_msat": 0,
        "out_payments_fulfilled": 0,
        "out_fulfilled_msat": 0,
        "htlcs": [],
    })
    return item


LISTPEERCHANNELS_PARAMS: p.Spec = (
    ["id", "short_channel_id", "channel_id"], set(),
    {"id": p.pubkey, "short_channel_id": p.string, "channel_id": p.hex32},
)


def listpeerchannels(net: Network, node: HostedNode, args: Json) -> Json:
    items = [_channel_json(net, node, ch) for ch in _channels_of(net, node)]
    for key in ("id", "short_channel_id", "channel_id"):
        if key in args:
            field = "peer_id" if key == "id" else key
            items = [i for i in items if i.get(field) == args[key]]
    return {"channels": items}


LISTFUNDS_PARAMS: p.Spec = (["spent"], set(), {"spent": p.boolean})


def listfunds(net: Network, node: HostedNode, args: Json) -> Json:
    spent = args.get("spent", False)
    outputs = [
        {"txid": o["txid"], "output": o["output"], "amount_msat": o["amount_msat"],
         "scriptpubkey": "0014" + node.node_id[2:42], "address": "bcrt1q" + node.node_id[2:40],
         "status": "confirmed", "blockheight": o["blockheight"], "reserved": False}
        for o in net.store.all(
            "SELECT * FROM outputs WHERE node = ? AND (spent = 0 OR ?) ORDER BY rowid",
            (node.name, 1 if spent else 0),
        )
    ]
    channels = []
    for ch in _channels_of(net, node):
        peer_name = ch["peer"] if ch["opener"] == node.name else ch["opener"]
        channels.append({
            "peer_id": net.nodes[peer_name].node_id, "connected": True, "state": ch["state"],
            "channel_id": ch["channel_id"], "short_channel_id": ch["short_channel_id"],
            "our_amount_msat": _ours(ch, node.name), "amount_msat": ch["total_msat"],
            "funding_txid": ch["funding_txid"], "funding_output": 0,
        })
    return {"outputs": outputs, "channels": channels}


CONNECT_PARAMS: p.Spec = (["id", "host", "port"], {"id"}, {"id": p.string, "host": p.string, "port": p.u64})


def connect(net: Network, node: HostedNode, args: Json) -> Json:
    peer_id, _, address = args["id"].partition("@")
    host, _, port_text = address.partition(":")
    host = host or args.get("host", "")
    peer = net.by_id(peer_id.lower())
    if peer is None:
        if not host:
            raise RpcFailure(CONNECT_NO_KNOWN_ADDRESS, f"Unable to connect, no address known for peer {peer_id}")
        raise RpcFailure(CONNECT_ALL_ADDRESSES_FAILED, f"All addresses failed: {host}: Connection refused")
    with net.store.transaction() as db:
        db.execute("INSERT OR IGNORE INTO peers VALUES (?, ?)", (node.name, peer.name))
        db.execute("INSERT OR IGNORE INTO peers VALUES (?, ?)", (peer.name, node.name))
    return {
        "id": peer.node_id,
        "features": FEATURES["init"],
        "direction": "out",
        "address": {"type": "ipv4", "address": host or "127.0.0.1",
                    "port": int(port_text or args.get("port") or peer.port)},
    }


FUNDCHANNEL_PARAMS: p.Spec = (
    ["id", "amount", "feerate", "announce", "minconf", "push_msat", "close_to", "request_amt",
     "compact_lease", "utxos", "mindepth", "reserve", "channel_type"],
    {"id", "amount"},
    {"id": p.pubkey, "amount": p.sat_or_all, "push_msat": p.msat, "announce": p.boolean},
)


def fundchannel(net: Network, node: HostedNode, args: Json) -> Json:
    peer = net.by_id(args["id"])
    if peer is None:
        raise RpcFailure(FUNDING_UNKNOWN_PEER, "Unknown peer")
    if peer.name not in _peers(net, node):
        raise RpcFailure(FUNDING_PEER_NOT_CONNECTED, "Peer not connected")
    onchain = net.onchain_msat(node.name)
    fee_msat = 200_000
    amount_sat = args["amount"]
    amount_msat = (onchain - fee_msat) if amount_sat is None else amount_sat * 1000
    if amount_msat <= 0 or amount_msat + fee_msat > onchain:
        raise RpcFailure(
            FUND_CANNOT_AFFORD,
            f"Could not afford {amount_msat // 1000}sat using all {onchain // 1000}sat of confirmed outputs",
        )
    push = args.get("push_msat", 0)
    ch = net.open_channel(node.name, peer.name, amount_msat, amount_msat - push, from_onchain=True)
    return {
        "tx": "02000000" + random_hex(100),
        "txid": str(ch["funding_txid"]),
        "channel_id": str(ch["channel_id"]),
        "channel_type": CHANNEL_TYPE,
        "outnum": 0,
    }


CLOSE_PARAMS: p.Spec = (
    ["id", "unilateraltimeout", "destination", "fee_negotiation_step", "wrong_funding",
     "force_lease_closed", "feerange"],
    {"id"},
    {"id": p.string, "unilateraltimeout": p.u64},
)


def _close_funds(db: sqlite3.Connection, ch: dict[str, Any], txid: str, height: int) -> None:
    for output, (name, amount) in enumerate(
        ((ch["opener"], ch["opener_msat"]), (ch["peer"], ch["total_msat"] - ch["opener_msat"]))
    ):
        if amount > 0:
            db.execute(
                "INSERT INTO outputs (node, txid, output, amount_msat, blockheight) VALUES (?, ?, ?, ?, ?)",
                (name, txid, output, amount, height),
            )


def close(net: Network, node: HostedNode, args: Json) -> Json:
    target = args["id"].lower()
    candidates = [
        ch for ch in _channels_of(net, node)
        if ch["state"] == "CHANNELD_NORMAL" and target in (
            ch["short_channel_id"], ch["channel_id"],
            net.nodes[ch["peer"] if ch["opener"] == node.name else ch["opener"]].node_id,
        )
    ]
    if not candidates:
        raise RpcFailure(LIGHTNINGD, f"Short channel ID not found: '{args['id']}'")
    ch = candidates[0]
    txid = random_hex()
    with net.store.transaction() as db:
        height = net.store.meta("blockheight", 101) + 1
        db.execute("UPDATE channels SET state = 'ONCHAIN', closer = ? WHERE id = ?", (node.name, ch["id"]))
        _close_funds(db, ch, txid, height)
        net.store.set_meta(db, "blockheight", height)
    return {"txs": ["02000000" + random_hex(100)], "txids": [txid], "type": "mutual"}
