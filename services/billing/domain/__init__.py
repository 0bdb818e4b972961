"""Billing domain: pure functions from coded encounters to priced, scrubbed X12 claims.

Modules: ``chargemaster`` (prices), ``claim`` (claim model and builder; its id is
``shared.claim_ids``, which payments recognises too), ``scrubber`` + ``ncci`` + ``payer_rules``
(pre-submission edits and the filing limit), ``x12_837`` (837P/837I writer), ``acks`` +
``ack_codes`` (999 / 277CA reading).
No I/O beyond reading this package's own sample data files.
"""
