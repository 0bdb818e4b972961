"""Bundled payer-simulator data: the fee schedule (code numbers and allowed amounts only)."""
