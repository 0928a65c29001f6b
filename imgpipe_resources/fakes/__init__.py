"""Local stand-ins for external systems, for tests and benchmarks (real sockets, no network)."""
