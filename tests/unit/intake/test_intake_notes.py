"""Notes: attachments inline or as a Binary, gzip, HTML/XHTML, RTF, C-CDA (real documents),
Composition sections, several notes in date order; an unreadable note is a warning."""

import base64
import gzip
import io
from pathlib import Path

from reportlab.pdfgen import canvas

from services.intake.domain.fhir import parse_fhir
from services.intake.domain.notes import cda_text, narrative_text, rtf_text
from tests.unit.intake.test_intake_references import DOC, ORG, PATIENT, bundle, entry, visit

CCDA = Path(__file__).resolve().parents[2] / "fixtures/realworld/ccda/ms-fhir-converter"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def document(rid, *attachments, day=None):
    body = {
        "status": "current",
        "context": {"encounter": [{"reference": "Encounter/e1"}]},
        "content": [{"attachment": a} for a in attachments],
    }
    if day:
        body["date"] = day
    return entry("DocumentReference", rid, **body)


def note_of(*resources):
    pe = parse_fhir(bundle(visit(), PATIENT, ORG, DOC, *resources)).encounters[0]
    return pe.encounter.note, [w.as_dict() for w in pe.warnings]


def test_plain_gzip_html_xhtml_and_rtf():
    text = "Assessment: ankle sprain.\nPlan: brace."
    assert (
        note_of(document("d", {"contentType": "text/plain", "data": b64(text.encode())}))[0] == text
    )
    gz = {"contentType": "text/plain", "data": b64(gzip.compress(text.encode()))}
    assert note_of(document("d", gz))[0] == text
    html = "<html><head><style>p{}</style></head><body><p>Assessment: sprain &amp; swelling</p><p>Plan:<br>ice</p></body></html>"
    assert note_of(document("d", {"contentType": "text/html", "data": b64(html.encode())}))[0] == (
        "Assessment: sprain & swelling\nPlan:\nice"
    )
    xhtml = '<div xmlns="http://www.w3.org/1999/xhtml"><ul><li>Ice</li><li>Brace</li></ul></div>'
    assert (
        note_of(
            document("d", {"contentType": "application/xhtml+xml", "data": b64(xhtml.encode())})
        )[0]
        == "Ice\nBrace"
    )
    rtf = r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Assessment: \b sprain\b0 .\par Plan: brace.\par}"
    assert note_of(document("d", {"contentType": "text/rtf", "data": b64(rtf.encode())}))[0] == (
        "Assessment: sprain.\nPlan: brace."
    )
    assert rtf_text(rtf) == "Assessment: sprain.\nPlan: brace."
    latin = "Café visit".encode("latin-1")
    assert (
        note_of(
            document("d", {"contentType": "text/plain; charset=iso-8859-1", "data": b64(latin)})
        )[0]
        == "Café visit"
    )


def test_one_rendition_of_a_document_is_read_plain_text_first():
    plain = {"contentType": "text/plain", "data": b64(b"the plain rendition")}
    html = {"contentType": "text/html", "data": b64(b"<p>the html rendition</p>")}
    assert note_of(document("d", html, plain))[0] == "the plain rendition"


def test_ccda_documents_become_their_narrative():
    raw = (CCDA / "Progress_Note.ccda").read_bytes()
    text = cda_text(raw)
    assert text.startswith("Progress Note\n\n")
    assert "CHIEF COMPLAINT:\nDark stools" in text
    assert "<" not in text
    # a C-CDA gzip-compressed and labelled text/plain, as the Microsoft converter writes it
    note, warnings = note_of(
        document("d", {"contentType": "text/plain", "data": b64(gzip.compress(raw))})
    )
    assert note == text and warnings == []
    for name in ("CCD.ccda", "History_and_Physical.ccda", "Procedure_Note.ccda"):
        assert len(cda_text((CCDA / name).read_bytes())) > 500


def test_a_ccda_referencing_an_external_file_is_no_readable_documentation():
    raw = (CCDA / "Unstructured_Document_reference.ccda").read_bytes()
    note, warnings = note_of(document("d", {"contentType": "application/xml", "data": b64(raw)}))
    assert note is None
    assert warnings == [
        {
            "path": "entry[4].resource.content[0].attachment",
            "message": "no readable documentation: the document's body is a reference to an external file",
        }
    ]


def test_attachment_url_to_a_binary_in_the_bundle_and_outside_it():
    binary = entry("Binary", "b1", contentType="text/plain", data=b64(b"note held in a Binary"))
    doc = document("d", {"contentType": "text/plain", "url": "Binary/b1"})
    assert note_of(doc, binary)[0] == "note held in a Binary"
    doc = document("d", {"contentType": "text/plain", "url": "urn:uuid:0000"})
    assert note_of(doc, {**binary, "fullUrl": "urn:uuid:0000"})[0] == "note held in a Binary"
    outside = document(
        "d", {"contentType": "application/pdf", "url": "https://ehr.example/notes/1.pdf"}
    )
    note, warnings = note_of(outside)
    assert note is None
    assert warnings == [
        {
            "path": "entry[4].resource.content[0].attachment",
            "message": "no readable documentation: an attachment url outside the input (not fetched)",
        }
    ]


def test_a_pdf_note_is_read_from_its_text_layer():
    buf = io.BytesIO()
    page = canvas.Canvas(buf)
    page.drawString(72, 720, "Assessment: ankle sprain.")
    page.drawString(72, 700, "Plan: brace.")
    page.save()
    pdf = document("d", {"contentType": "application/pdf", "data": b64(buf.getvalue())})
    assert note_of(pdf)[0] == "Assessment: ankle sprain.\nPlan: brace."


def test_unreadable_content_is_a_warning_and_the_encounter_goes_on():
    pdf = document("d", {"contentType": "application/pdf", "data": b64(b"%PDF-1.4 ...")})
    note, warnings = note_of(pdf)
    assert note is None
    assert warnings[0]["message"] == "no readable documentation: a PDF that does not parse"
    png = document("d", {"contentType": "image/png", "data": b64(b"\x89PNG\r\n")})
    assert note_of(png)[1][0]["message"] == (
        "no readable documentation: content type that is not text (e.g. an image)"
    )
    broken = document("d", {"contentType": "text/plain", "data": b64(b"\x1f\x8b not really gzip")})
    assert (
        note_of(broken)[1][0]["message"]
        == "no readable documentation: gzip data that does not decompress"
    )


def test_several_notes_are_joined_oldest_first():
    later = document("late", {"data": b64(b"addendum: labs normal")}, day="2026-03-03T08:00:00Z")
    first = document("first", {"data": b64(b"visit note")}, day="2026-03-02T10:00:00Z")
    comp = entry(
        "Composition",
        "c",
        status="final",
        date="2026-03-02T09:00:00Z",
        encounter={"reference": "Encounter/e1"},
        section=[{"title": "HPI", "text": {"div": "<div>twisted ankle</div>"}}],
    )
    same = document("dup", {"data": b64(b"visit note")}, day="2026-03-02T11:00:00Z")
    note, _ = note_of(later, first, comp, same)
    assert note == "HPI:\ntwisted ankle\n\nvisit note\n\naddendum: labs normal"


def test_narrative_text_keeps_the_old_rules():
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>A &amp; B</p><table><tr><td>x</td></tr></table>line<br/>next</div>'
    assert narrative_text(div) == "A & B\nx\n\nline\nnext"
