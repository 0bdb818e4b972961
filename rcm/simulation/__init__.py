"""The clearinghouse/payer simulator and the synthetic sample generator (demo, tests, bench; never deployed)."""
