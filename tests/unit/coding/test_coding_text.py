from services.coding.domain import text


def status_of(note: str, phrase: str) -> str:
    sents = text.sentences(note)
    ctx = text.context(note, sents)
    i = note.index(phrase)
    return ctx.status(i, i + len(phrase))


def test_sections_and_sentences():
    note = "CC: cough\nHPI: three days. No fever.\nAssessment:\n1. Acute bronchitis.\n2. Hypertension, stable."
    kinds = [s.section for s in text.sentences(note)]
    assert kinds == ["cc", "hpi", "hpi", "assessment", "assessment"]
    assert [note[s.start : s.end] for s in text.sentences(note)][3:] == [
        "Acute bronchitis",
        "Hypertension, stable",
    ]


def test_negation_scope_runs_to_termination_term():
    note = "Denies fever, chills or cough but reports sore throat."
    assert status_of(note, "cough") == "negated"
    assert status_of(note, "sore throat") == "affirmed"


def test_negation_post_trigger_is_local():
    note = "Pharyngitis, rapid strep negative."
    assert status_of(note, "strep") == "negated"
    assert status_of(note, "Pharyngitis") == "affirmed"


def test_uncertainty_and_history_triggers():
    assert (
        status_of("Chest pain, rule out myocardial infarction.", "myocardial infarction")
        == "uncertain"
    )
    assert status_of("Chest pain, rule out myocardial infarction.", "Chest pain") == "affirmed"
    assert status_of("Probable pneumonia.", "pneumonia") == "uncertain"
    assert status_of("Pneumonia is unlikely.", "Pneumonia") == "negated"
    assert status_of("History of kidney stones.", "kidney stones") == "history"
    assert status_of("Family history of colon cancer.", "colon cancer") == "family"


def test_without_negates_only_a_few_words():
    note = "Type 2 diabetes mellitus without complications - on metformin."
    assert status_of(note, "complications") == "negated"
    assert status_of(note, "metformin") == "affirmed"


def test_tokens_expand_abbreviations_and_bind_numbers():
    assert text.norm_tokens("T2DM with CKD stage IIIa") == [
        "type2",
        "diabete",
        "mellitus",
        "with",
        "chronic",
        "kidney",
        "disease",
        "stage3a",
    ]
    assert [t.norm for t in text.tokenize("R ankle")] == ["right", "ankle"]
    assert text.norm_tokens("COVID-19") == ["covid19"]
