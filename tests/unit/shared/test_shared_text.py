"""shared.text: the one rule for text PostgreSQL cannot store, as intake and coding apply it."""

import json

import pytest

from shared.text import Unstorable, unstorable, unstorable_json


@pytest.mark.parametrize(
    ("text", "flaw"),
    [
        ("Side? Please clarify.", None),
        ("", None),
        ("Müller, 李, 😀 and 𝔘 (astral, one code point each)", None),
        ("Side?\x00 Please clarify.", Unstorable.NUL),
        ("\ud800", Unstorable.LONE_SURROGATE),
        ("low half alone \udfff", Unstorable.LONE_SURROGATE),
        # Two halves as two code points are not one character: UTF-8 cannot encode them.
        ("\ud83d\ude00", Unstorable.LONE_SURROGATE),
        ("\\u0000 written out is six characters", None),
    ],
)
def test_a_decoded_value(text, flaw):
    assert unstorable(text) == flaw


def test_the_rule_is_what_utf8_and_postgres_refuse():
    """Every value the rule passes encodes as UTF-8 and holds no NUL (what a text column needs)."""
    for text in ("plain", "😀", "\ud800", "a\x00b", "\udc00x"):
        ok = unstorable(text) is None
        try:
            text.encode("utf-8")
            encodes = "\x00" not in text
        except UnicodeEncodeError:
            encodes = False
        assert ok == encodes, text


@pytest.mark.parametrize(
    ("body", "flaw"),
    [
        (json.dumps({"name": "Müller 😀"}).encode(), None),  # \u escapes, paired for 😀
        (json.dumps({"name": "Müller 😀"}, ensure_ascii=False).encode(), None),
        (b'{"name": "a\\ud83d\\ude00b"}', None),  # an escaped pair is one character
        (b"\xff\xfe\x00garbage", Unstorable.NOT_UTF8),
        (b"\x80\x81", Unstorable.NOT_UTF8),
        (b'{"name": "a\x00b"}', Unstorable.NUL),
        (b'{"name": "a\\u0000b"}', Unstorable.NUL),
        (b'{"name": "\\ud800"}', Unstorable.LONE_SURROGATE),
        (b'{"name": "\\uD800x"}', Unstorable.LONE_SURROGATE),
        (b'{"name": "\\udc00"}', Unstorable.LONE_SURROGATE),
        (b'{"name": "\\ud800\\u0041"}', Unstorable.LONE_SURROGATE),  # high half, then not low
        (b'{"name": "\\ude00\\ud83d"}', Unstorable.LONE_SURROGATE),  # low before high
        (b'{"name": "\\u12"}', None),  # not an escape json accepts, but not ours to judge
    ],
)
def test_a_raw_json_body(body, flaw):
    assert unstorable_json(body) == flaw


def test_a_body_the_rule_passes_parses_to_values_it_passes():
    for body in (b'{"a": "\\ud83d\\ude00"}', b'{"a": "\\u00e9"}', '{"a": "李"}'.encode()):
        assert unstorable_json(body) is None
        assert unstorable(json.loads(body)["a"]) is None
    for body in (b'{"a": "\\ud800"}', b'{"a": "\\u0000"}'):
        assert unstorable_json(body) is not None
        assert unstorable(json.loads(body)["a"]) is not None
