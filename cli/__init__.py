"""frrdmvpn-shell: the operator shell (a client of the gRPC API)."""
