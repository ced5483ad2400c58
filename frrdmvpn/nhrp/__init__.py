"""FRR nhrpd event socket support."""
