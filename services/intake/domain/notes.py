"""Clinical notes as plain text: attachments (inline or a Binary in the input), Composition
sections, and what is inside them (plain text, HTML/XHTML, RTF, a C-CDA document, gzip).

Maintained parsers do the reading: the standard library's ``html.parser`` for HTML/XHTML,
``striprtf`` for RTF, ``defusedxml`` (the stdlib parser with entity expansion refused) for
C-CDA XML, ``pypdf`` for the text layer of a PDF. A note that cannot be read is a warning for the caller, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import re
import zlib
from html.parser import HTMLParser
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from striprtf.striprtf import rtf_to_text

_BLOCK = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "ul", "ol"}
_SKIP = {"script", "style", "head", "title"}
_MAX_TEXT = 2_000_000  # bytes of decoded (and decompressed) note: more is not a visit note
_CDA = "{urn:hl7-org:v3}"
_CDA_BLOCK = {"paragraph", "item", "tr", "caption", "br", "list", "table", "content_block"}


class Unreadable(ValueError):
    """Why an attachment gave no text (a message without any value from the input);
    ``field`` names the attachment element at fault, when one is."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, _attrs) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _SKIP:
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def tidy(text: str) -> str:
    """Trailing spaces off each line, at most one blank line in a row, no outer blank lines."""
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def narrative_text(markup: str) -> str:
    """Plain text of HTML or XHTML narrative: block ends and <br/> become line breaks."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return tidy("".join(parser.parts))


def rtf_text(rtf: str) -> str:
    return tidy(rtf_to_text(rtf, errors="ignore"))


def cda_text(xml: bytes | str) -> str:
    """The human-readable narrative of a C-CDA document: each section's title and text block
    (paragraphs, lists, tables, line breaks), nested sections after their parent.

    Raises ``Unreadable`` for XML that does not parse, entity tricks, or a document whose body
    is only a reference to an external file."""
    try:
        root = SafeET.fromstring(xml)
    except Exception:  # defusedxml raises its own classes besides ParseError
        raise Unreadable("XML that does not parse (or uses entity declarations)") from None
    parts = []
    title = root.find(f"{_CDA}title")
    for section in root.iter(f"{_CDA}section"):
        chunk = []
        head = section.find(f"{_CDA}title")
        if head is not None and "".join(head.itertext()).strip():
            chunk.append("".join(head.itertext()).strip() + ":")
        text = section.find(f"{_CDA}text")
        if text is not None:
            chunk.append(_cda_block(text))
        body = tidy("\n".join(chunk))
        if body and body != (chunk[0] if chunk else ""):
            parts.append(body)
    if not parts:
        body = root.find(f".//{_CDA}nonXMLBody/{_CDA}text")
        if body is not None and body.find(f"{_CDA}reference") is not None:
            raise Unreadable("the document's body is a reference to an external file")
        if body is not None and (raw := "".join(body.itertext()).strip()):
            if body.get("representation") == "B64":
                return decode_payload(raw, body.get("mediaType") or "text/plain")
            return tidy(raw)
    text = "\n\n".join(parts)
    if title is not None and (t := "".join(title.itertext()).strip()) and text:
        text = f"{t}\n\n{text}"
    return text


def pdf_text(raw: bytes) -> str:
    """The text layer of a PDF, page after page. Raises ``Unreadable`` for a PDF that does
    not parse or has no text (a scan: nothing a coder's search can read)."""
    # pypdf (and the cryptography it loads) is imported when a PDF comes, not by every
    # `rcm code` and intake start: most notes are text.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages[:200])
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):
        raise Unreadable("a PDF that does not parse") from None
    if not text.strip():
        raise Unreadable("a PDF without a text layer (a scanned image)")
    return tidy(text)


def _cda_block(el: Element) -> str:
    out: list[str] = []

    def walk(node: Element) -> None:
        tag = node.tag.replace(_CDA, "") if isinstance(node.tag, str) else ""
        if tag == "br":
            out.append("\n")
        if node.text and tag != "br":
            out.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                out.append(child.tail)
        if tag in _CDA_BLOCK and tag != "br":
            out.append("\n")
        elif tag in ("td", "th"):
            out.append(" ")

    walk(el)
    return tidy(re.sub(r"[ \t]+", " ", "".join(out)))


def _kind(mime: str, head: bytes) -> str | None:
    """Which reader suits the content: what its first bytes show (RTF, XML, HTML: EHRs label
    those text/plain too), else its declared type."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    if start.startswith(b"{\\rtf"):
        return "rtf"
    if start.startswith(b"<?xml") or b"<clinicaldocument" in head[:4096].lower():
        return "xml"
    if start.startswith(b"%pdf") or mime == "application/pdf":
        return "pdf"
    if mime in ("text/plain", "text/markdown"):
        return "text/plain"
    if mime in ("text/html", "application/xhtml+xml"):
        return mime
    if mime in ("text/rtf", "application/rtf"):
        return "rtf"
    if mime in ("text/xml", "application/xml", "application/hl7-v3+xml", "application/cda+xml"):
        return "xml"
    if start.startswith((b"<!doctype html", b"<html", b"<div", b"<p>", b"<body")):
        return "text/html"
    if not mime and b"\x00" not in head[:512]:
        return "text/plain"
    return None


def decode_payload(data: str, content_type: str) -> str:
    """Text of a base64 attachment payload of ``content_type`` (charset honoured; gzip undone).

    Raises ``Unreadable`` saying why (never quoting the payload)."""
    try:
        raw = base64.b64decode(_pad("".join(data.split())), validate=False)
    except (binascii.Error, ValueError):
        raise Unreadable("expected base64-encoded data", "data") from None
    return decode_bytes(raw, content_type)


def decode_bytes(raw: bytes, content_type: str) -> str:
    mime, _, params = content_type.lower().partition(";")
    mime = mime.strip()
    if raw[:2] == b"\x1f\x8b" or mime in ("application/gzip", "application/x-gzip"):
        raw = _gunzip(raw)
        if mime in ("application/gzip", "application/x-gzip"):
            mime = ""
    if len(raw) > _MAX_TEXT:
        raise Unreadable("note larger than a visit note can be")
    kind = _kind(mime, raw[:4096])
    if kind is None:
        raise Unreadable("content type that is not text (e.g. an image)")
    charset = m.group(1) if (m := re.search(r"charset=\"?([\w-]+)", params)) else None
    if kind == "xml":
        return cda_text(raw)
    if kind == "pdf":
        return pdf_text(raw)
    try:
        text = raw.decode(charset or "utf-8-sig")
    except (UnicodeDecodeError, LookupError):
        if charset:
            raise Unreadable(f"text that is not valid in its declared charset {charset}") from None
        text = raw.decode("cp1252", errors="replace")
    if kind == "rtf":
        return rtf_text(text)
    if kind in ("text/html", "application/xhtml+xml"):
        return narrative_text(text)
    return tidy(text)


def _pad(b64: str) -> str:
    b64 = b64.replace("-", "+").replace("_", "/")
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", b64):
        raise Unreadable("expected base64-encoded data", "data")
    return b64 + "=" * (-len(b64) % 4)


def _gunzip(raw: bytes) -> bytes:
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(raw, _MAX_TEXT + 1)
    except (zlib.error, gzip.BadGzipFile):
        raise Unreadable("gzip data that does not decompress") from None
    if len(out) > _MAX_TEXT:
        raise Unreadable("note larger than a visit note can be")
    return out
