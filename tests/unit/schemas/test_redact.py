"""Credentials in URLs are masked and control characters escaped, the one way every package uses."""

from __future__ import annotations

import pytest

from schemas.redact import escape_controls, mask_urls, redact


@pytest.mark.parametrize(("text", "shown"), [
    ("http://alice:s3cret@ch.example:8123/db", "http://alice:****@ch.example:8123/db"),
    ("https://key:pa:ss@w@rd@registry.example/subjects", "https://key:****@registry.example/subjects"),
    ("two: http://a:one@h1/x and sasl_ssl://b:two@h2:9093", "two: http://a:****@h1/x and sasl_ssl://b:****@h2:9093"),
    ("https://ghp_tokenvalue@git.example/repo", "https://****@git.example/repo"),
    ("http://ch.example:8123/?user=u&password=hunter2&x=1", "http://ch.example:8123/?user=u&****&x=1".replace(
        "&****", "&password=****")),
    ("<urlopen error 'http://u:p%40ss@registry.example:8081'>", "<urlopen error 'http://u:****@registry.example:8081'>"),
])
def test_mask_urls_hides_passwords_and_tokens_but_keeps_where(text: str, shown: str) -> None:
    assert mask_urls(text) == shown


@pytest.mark.parametrize("text", [
    "chdb:///var/lib/milestream/clickhouse", "kafka://127.0.0.1:9092", "http://ch.example:8123/db",
    "rider@example.com", "plain text with = signs", "http://h:80/path@not-userinfo",
])
def test_mask_urls_leaves_text_without_credentials_alone(text: str) -> None:
    assert mask_urls(text) == text


def test_escape_controls_makes_every_control_character_visible_text() -> None:
    hostile = "ord-\x1b[2J\x1b]0;owned\x07\r\nFAKE LOG LINE\x00\x7f\x9b"
    escaped = escape_controls(hostile)
    assert escaped == "ord-\\x1b[2J\\x1b]0;owned\\x07\\r\\nFAKE LOG LINE\\x00\\x7f\\x9b"
    assert all(c.isprintable() for c in escaped)


def test_escape_controls_can_keep_line_structure_for_tracebacks() -> None:
    assert escape_controls("line 1\n\tline 2\x1b", keep_lines=True) == "line 1\n\tline 2\\x1b"


def test_printable_unicode_is_kept() -> None:
    assert escape_controls("Müller Straße 5, बेंगलुरु") == "Müller Straße 5, बेंगलुरु"


def test_redact_does_both() -> None:
    assert redact("registry http://u:p@h failed\x1b[0m\n") == "registry http://u:****@h failed\\x1b[0m\\n"
