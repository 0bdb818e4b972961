"""The missing-information form: the fields followup names, as inputs, read into the body
billing's PATCH /claims/{id}/billing-data takes (checked here against billing's own parser)."""

from __future__ import annotations

from services.billing.domain import billing_data as billing_side
from services.workbench.domain.billing_data import form_for, read

# What followup names for a claim whose EHR sent no NPI, EIN, ZIP+4 or payer id (the order
# billing's scrubber finds them in).
NAMED = [
    "billing_provider.npi",
    "billing_provider.tax_id",
    "billing_provider.address.postal_code",
    "payer.payer_id",
    "rendering_provider.npi",
]
FILLED = {
    "billing_provider.npi": "1245319599",
    "billing_provider.tax_id": "12-3456789",
    "billing_provider.address.line1": "1 Main St",
    "billing_provider.address.city": "Winchester",
    "billing_provider.address.state": "ma",
    "billing_provider.address.postal_code": "01890-1234",
    "payer.payer_id": "ANTHEM1",
}


def test_each_named_field_becomes_inputs_a_group_asks_for_all_it_needs():
    form = form_for(NAMED)
    paths = [i.path for i in form.inputs]
    assert paths == [
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.address.line1",
        "billing_provider.address.line2",
        "billing_provider.address.city",
        "billing_provider.address.state",
        "billing_provider.address.postal_code",
        "payer.payer_id",
    ]
    assert form.not_here == ["rendering_provider.npi"]  # the EHR's to send
    assert [i.path for i in form.inputs if not i.required] == ["billing_provider.address.line2"]
    assert [i.path for i in form_for(["payer"]).inputs] == [
        "payer.payer_id",
        "payer.payer_name",
        "payer.member_id",
    ]


def test_the_form_reads_into_the_body_billing_parses():
    body, problems = read(FILLED, NAMED)
    assert problems == []
    assert body == {
        "billing_provider": {
            "npi": "1245319599",
            "tax_id": "12-3456789",
            "address": {
                "line1": "1 Main St",
                "city": "Winchester",
                "state": "MA",
                "postal_code": "01890-1234",
            },
        },
        "payer": {"payer_id": "ANTHEM1"},
    }
    parsed = billing_side.parse(body)  # billing's own parser takes it as it is
    assert parsed.billing_provider.tax_id == "123456789"
    assert parsed.billing_provider.address.postal_code == "018901234"


def test_problems_name_the_field_never_the_value():
    bad = FILLED | {
        "billing_provider.npi": "12345",
        "billing_provider.address.postal_code": "01890",
        "billing_provider.tax_id": "",
    }
    body, problems = read(bad, NAMED)
    assert problems == [
        "billing_provider.npi: 10 digits",
        "billing_provider.tax_id: required",
        "billing_provider.address.postal_code: a ZIP+4 (NNNNN-NNNN)",
    ]
    assert not any("12345" in p or "01890" in p for p in problems)
    _, problems = read({"patient.birth_date": "2999-01-01"}, ["patient.birth_date"])
    assert problems == ["patient.birth_date: a date in the past"]
    _, problems = read({}, ["rendering_provider.npi"])
    assert problems == ["nothing to send: fill the fields named"]
