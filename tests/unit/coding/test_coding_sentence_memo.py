"""Per-sentence memos (sentence split, context scopes, phrase readings, services):
a memoised answer is the one a fresh read gives, wherever the sentence sits."""

from coding_support import make_enc

from services.coding.domain import diagnoses, engine, procedures, text

NOTES = [
    "CC: cough\nHPI: three days. No fever; denies chills but reports sore throat.\n"
    "Exam: Right knee effusion.\nProcedure: Right knee joint injection performed.\n"
    "Kenalog 40 mg injected.\nAssessment:\n1. Acute bronchitis, rule out pneumonia.\n"
    "2. Primary osteoarthritis of right knee.\n3. Pharyngitis, rapid strep negative.\nPlan: Flu vaccine given today.",
    "Assessment: Type 2 diabetes mellitus without complications; history of hypertension.\n"
    "Family history of breast cancer. Urinalysis dipstick performed in clinic: negative.",
]


def _clear() -> None:
    for f in (text._split, diagnoses._read):
        f.cache_clear()
    text._SCOPES.clear()
    procedures._SERVICES.clear()


def _coded(note: str) -> str:
    return engine.offline_json(engine.code_encounter(make_enc(note))).__repr__()


def test_memoised_answers_equal_fresh_ones():
    for note in NOTES:
        _clear()
        fresh = _coded(note)
        assert _coded(note) == fresh  # second answer from the memos


def test_scopes_never_leave_their_sentence():
    for note in NOTES:
        sents = text.sentences(note)
        for sc in text.context(note, sents).scopes:
            assert any(s.start <= sc.start and sc.end <= s.end for s in sents)


def test_readings_move_with_the_sentence():
    for note in NOTES:
        shifted = "Interval history: none.\n" + note
        k = len(shifted) - len(note)
        a = diagnoses.find(note, 40)
        b = diagnoses.find(shifted, 40)
        assert [(d.code, d.start + k, d.end + k) for d in a.found] == [
            (d.code, d.start, d.end) for d in b.found
        ]
        ctx_a = text.context(note, text.sentences(note))
        ctx_b = text.context(shifted, text.sentences(shifted))
        assert [(s.start + k, s.end + k, s.kind) for s in ctx_a.scopes] == [
            (s.start, s.end, s.kind) for s in ctx_b.scopes if s.start >= k
        ]


def test_non_ascii_notes_read_alike():
    for note in NOTES:
        wide = note + "\nPlan: return in 2 weeks \u2014 sooner if worse."
        narrow = note + "\nPlan: return in 2 weeks - sooner if worse."
        assert [
            (s.start, s.end, s.kind) for s in text.context(wide, text.sentences(wide)).scopes
        ] == [(s.start, s.end, s.kind) for s in text.context(narrow, text.sentences(narrow)).scopes]
