"""frrdmvpn: make FRR nhrpd and strongSwan a secure DMVPN hub or spoke."""

__version__ = "0.2.0"
