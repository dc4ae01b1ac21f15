"""The dev node: a stand-in for lightningd that serves CLN's JSON-RPC on unix sockets.

It hosts several simulated nodes (default `marketplace` and `wallet`) that
issue real signed regtest BOLT11 invoices and pay each other over simulated
channels. Everything persists in DIR/devnode.sqlite3.
"""
