"""Pure helpers of the console: escaping, bidi controls, money, and the edit diff."""

from ui.common import format_value, md_escape, show_bidi
from ui.review_parts import diff_lines


def test_md_escape_leaves_no_markdown_syntax() -> None:
    escaped = md_escape("![x](http://evil/b.png) [a](javascript:alert(1)) <b>*hi*</b>")
    # Every punctuation character is backslash-escaped, so nothing forms a link, image or tag.
    assert "![" not in escaped.replace("\\!\\[", "")
    assert escaped.startswith("\\!\\[x\\]\\(http\\:\\/\\/")
    assert "<b>" not in escaped


def test_bidi_overrides_are_shown_not_applied() -> None:
    assert show_bidi("invoice\u202egpj.exe") == "invoice[U+202E]gpj.exe"
    assert show_bidi("plain") == "plain"


def test_amounts_carry_their_currency() -> None:
    payload = {"amount_usd": 1234.5, "currency": "EUR"}
    assert format_value(payload, "amount_usd", 1234.5) == "1,234.50 EUR"
    assert format_value({}, "amount_usd", 3) == "3.00 USD"
    assert format_value({}, "note", {"a": 1}) == '{"a": 1}'


def test_diff_names_only_what_changed() -> None:
    before = {"amount_usd": 180.0, "currency": "USD", "reason": "late"}
    after = {"amount_usd": 120.0, "currency": "USD", "reason": "late"}
    assert diff_lines(before, after) == ["- amount_usd: 180.00 USD", "+ amount_usd: 120.00 USD"]
    assert diff_lines(before, dict(before)) == []
