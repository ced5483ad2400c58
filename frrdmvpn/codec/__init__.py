"""Codecs of the bytes frrdmvpn reads and writes: pure, no I/O, each with a fuzzer.

VICI (:mod:`.vici`), FRR's vty (:mod:`.vty`), NHRP packets (:mod:`.nhrp`), nhrpd's event
socket (:mod:`.nhrp_events`), netlink framing (:mod:`.netlink`) with rtnetlink addresses
(:mod:`.rtnl_addr`) and neighbours (:mod:`.rtnl_neigh`) and NFLOG (:mod:`.nflog`), inotify
records (:mod:`.inotify`) and X.509 certificates (:mod:`.x509`). The adapters own the
sockets and descriptors; the core reads the decoded values.
"""
