"""Bundled sample data: chargemasters, payer rules, a tiny NCCI/MUE fixture."""
