"""Pure intake logic: parsing and mapping inputs into encounters (no I/O)."""
