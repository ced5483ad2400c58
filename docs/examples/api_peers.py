#!/usr/bin/env python3
"""List a node's DMVPN peers through frrdmvpnd's API, like `show dmvpn`; with --watch,
follow their changes until Ctrl-C.

    api_peers.py                      # the local daemon (unix socket)
    api_peers.py --watch
    api_peers.py --target hub.example:9443 --ca ca.pem --cert me.pem --key me.key
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc

from frrdmvpn.client import Client, describe
from frrdmvpn.v1 import watch_service_pb2 as wpb


def table(api: Client) -> None:
    print(f"{'Peer NBMA':<16} {'Tunnel address':<16} {'State':<6} {'Since':<20} Reason")
    for p in api.peers():
        since = p.state_since.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{p.key.remote_nbma:<16} {p.tunnel_address or '-':<16} "
            f"{api.state_name(p.state):<6} {since:<20} {p.state_reason}"
        )


def follow(api: Client) -> None:
    stream = api.watch(["peer"])
    try:
        for event in stream:
            if event.HasField("snapshot_end"):
                print("-- now following changes --")
            elif event.HasField("peer") and not event.snapshot:
                p = event.peer.peer
                change = wpb.ChangeType.Name(event.peer.change).removeprefix("CHANGE_TYPE_")
                print(
                    f"{change:<8} {p.key.remote_nbma:<16} {api.state_name(p.state):<6} "
                    f"{p.state_reason}"
                )
    except KeyboardInterrupt:
        stream.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="unix:/run/frrdmvpn/frrdmvpn.sock")
    parser.add_argument("--ca", type=Path)
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--watch", action="store_true")
    args = parser.parse_args()
    try:
        with Client(args.target, tls_ca=args.ca, tls_cert=args.cert, tls_key=args.key) as api:
            table(api)
            if args.watch:
                follow(api)
    except grpc.RpcError as exc:
        print(f"api_peers: {describe(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
