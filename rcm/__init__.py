"""rcm operator tooling: the command line, the local stack, the clearinghouse simulator and the benchmarks (never deployed)."""
