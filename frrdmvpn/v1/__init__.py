"""Generated gRPC/protobuf code of the frrdmvpn.v1 API (scripts/gen-proto; do not edit)."""
