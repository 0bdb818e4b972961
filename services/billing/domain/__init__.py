"""Billing domain: pure functions from coded encounters to priced, scrubbed X12 claims.

Modules: ``npi`` (check digit), ``chargemaster`` (prices), ``claim`` (claim model and
builder), ``claim_ids`` (patient control numbers), ``scrubber`` + ``ncci`` +
``payer_rules`` (pre-submission edits), ``x12_837`` (837P/837I writer), ``acks`` +
``ack_codes`` (999 / 277CA reading).
No I/O beyond reading this package's own sample data files.
"""
