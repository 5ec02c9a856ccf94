"""The routing prompt shows the model little and nothing secret; the model's answer becomes an index or None."""
from __future__ import annotations

import pytest

from protocols.ai.prompt import parse_choice, routing_prompt

BACKENDS = [(0, "http://orders:8080", "order management"), (1, "http://users:8080", "")]


def user_message(headers=(), body=b"", path="/api/orders") -> str:
    return routing_prompt("POST", path, list(headers), body, BACKENDS)[1]


def test_it_names_the_request_the_backends_and_the_answer_format():
    system, user = routing_prompt("POST", "/api/orders", [(b"content-type", b"application/json")], b'{"a": 1}',
                                  BACKENDS)
    assert '{"index": N}' in system
    assert "POST /api/orders" in user
    assert "content-type: application/json" in user
    assert '{"a": 1}' in user
    assert "0: http://orders:8080 - order management" in user
    assert "1: http://users:8080\n" in user


@pytest.mark.parametrize("name", [
    "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Auth-Token", "X-API-Key", "x-csrftoken",
])
def test_it_never_shows_credential_headers(name):
    assert "s3cr3t" not in user_message([(name, "s3cr3t")])


def test_it_shows_at_most_ten_headers():
    user = user_message([(f"x-h{i}", f"v{i}") for i in range(15)])
    assert "x-h9: v9" in user
    assert "x-h10" not in user


def test_it_shows_only_the_first_500_characters_of_the_body():
    user = user_message(body=("é" * 499 + "XY").encode())
    assert "é" * 499 + "X" in user
    assert "XY" not in user


def test_an_undecodable_body_is_shown_with_replacement_characters():
    assert "ab\ufffdcd" in user_message(body=b"ab\xffcd")


@pytest.mark.parametrize("secret", [
    "jane.doe+work@example.co.uk", "4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
    "3782 822463 10005",
])
def test_it_redacts_emails_and_card_numbers_in_the_body(secret):
    user = user_message(body=f'{{"note": "pay with {secret} please"}}'.encode())
    assert secret not in user
    assert "[email]" in user or "[card]" in user


def test_short_numbers_are_kept():
    assert "order 123456789012" in user_message(body=b"order 123456789012")


def test_an_email_cut_by_the_500_character_limit_leaves_nothing_of_itself():
    user = user_message(body=b"x" * 490 + b" someone.private@example.com")
    assert "someone" not in user


@pytest.mark.parametrize(("text", "expected"), [
    ('{"index": 1}', 1),
    ('I would pick {"index": 0} for this.', 0),
    ('```json\n{"index": 1}\n```', 1),
    ("Backend 1 fits best.", 1),
    ('{"index": 2}', None),
    ('{"index": -1}', None),
    ("no idea", None),
    ("", None),
    ('{"choice": true, "index": 1}', 1),
    ('{"index": true}', None),
])
def test_parse_choice(text, expected):
    assert parse_choice(text, 2) == expected
