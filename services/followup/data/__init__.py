"""Package data for followup: CARC/RARC tables and payer policies (read with importlib.resources)."""
