"""Benchmark and chaos runs over the local stack."""
