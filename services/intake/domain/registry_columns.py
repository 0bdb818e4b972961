"""The columns of the master-data CSVs (`rcm sites load`, `rcm payers load`): a module of its
own, so the command line's help names them without loading the event models."""

SITE_COLUMNS = (
    "site_id",
    "name",
    "npi",
    "tax_id",
    "taxonomy",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "aliases",
)
PROVIDER_COLUMNS = ("npi", "first_name", "last_name", "taxonomy", "site_id")
PAYER_COLUMNS = ("payer_id", "name", "filing_indicator", "self_pay", "aliases")
