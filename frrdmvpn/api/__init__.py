"""The gRPC API: the services, their backend over the daemon, roles, paging and Watch."""
