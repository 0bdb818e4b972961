"""Coding engine (computer-assisted coding), pure domain.

Entry points live in ``engine``: ``code_encounter``, ``validate_final_codes``,
``offline_json``. Modules: ``text`` (sections, tokens, NegEx context),
``lexicon`` (synonyms + term index), ``specificity`` (stem -> billable code),
``diagnoses`` / ``rules`` (mentions, combinations, companions, sequencing),
``procedures`` / ``drugs`` / ``lines`` (services), ``em`` (E/M level),
``edits``, ``cpt`` (CPT labels, licensed descriptors, HCPCS quarterly file),
``model`` (result types). ``fhir`` is the FHIR R4 intake.
"""
