"""Core logic of frrdmvpnd without I/O: authorization policy, state machines, reconciler."""
