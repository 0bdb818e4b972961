"""Names vulture cannot see used (`make lint`).

Segment handlers reached by name (``getattr(self, "_" + segment_id)``) and X12 fields kept on
parsed records so that a record says everything its segment said, though no rule reads them yet.
"""

_._bht
_._clm
_._dtp
_._ge
_._gs
_._hi
_._hl
_._iea
_._isa
_._lx
_._nm1
_._ref
_._sbr
_._se
_._st
_._sv1
_._sv2
_.corrected_patient
_.corrected_priority_payer
_.coverage_expiration
_.crossover_carrier
_.currency
_.original_qualifier
_.original_units
corrected_patient
corrected_priority_payer
coverage_expiration
crossover_carrier
currency
drg_code
fiscal_period_date
lines2
middle
original_qualifier
original_units
patient_key
rationale
_._drop_missing_eligibility  # shared.events.Coverage's pydantic serializer (called by pydantic)
API_KEY  # aiokafka protocol classes (rcm/localstack/kafka_acls.py): read by aiokafka
API_VERSION
FLEXIBLE_VERSION
RESPONSE_TYPE
