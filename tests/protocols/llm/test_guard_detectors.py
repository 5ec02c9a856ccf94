"""The prompt guard's detectors find real card numbers, IBANs, e-mail addresses and phone numbers, not look-alikes."""
from __future__ import annotations

import pytest

from protocols.llm.guard.detectors import find, iban_valid, mask

ALL = ("card", "iban", "email", "phone")


def kinds(text: str) -> list[str]:
    return [item.kind for item in find(ALL, text)]


def masked(text: str) -> str:
    return mask(text, find(ALL, text))


@pytest.mark.parametrize("number", [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5555555555554444", "378282246310005",
    "3782 822463 10005", "6011111111111117", "3530111333300000", "4222222222222",
])
def test_it_finds_luhn_valid_card_numbers(number):
    assert masked(f"my card is {number}, thanks") == "my card is [card], thanks"


@pytest.mark.parametrize("number", [
    "4111 1111 1111 1112",  # Luhn fails
    "5555555555554445",
    "1234 5678 9012 3452",  # Luhn-valid, but no card network starts with 1
    "41111111111111110000",  # 20 digits with no separator: an identifier, not a card
    "4111 1111 111",  # too short
    "INV4111111111111111",  # glued to letters: an identifier
    "DE89 3704 0044 0532 0130 01",  # the digits of an IBAN (a wrong one here) are not read as a card number
])
def test_it_leaves_numbers_that_are_not_card_numbers(number):
    assert "card" not in kinds(f"reference {number} attached")


def test_it_finds_a_card_number_written_next_to_other_numbers():
    assert masked("order 12 4111 1111 1111 1111 qty 3") == "order 12 [card] qty 3"


def test_it_finds_two_card_numbers_one_space_apart():
    assert masked("4111 1111 1111 1111 5555 5555 5555 4444") == "[card] [card]"


@pytest.mark.parametrize("iban", [
    "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300", "de89 3704 0044 0532 0130 00", "NO9386011117947",
])
def test_it_finds_mod_97_valid_ibans(iban):
    assert masked(f"IBAN: {iban}.") == "IBAN: [iban]."


@pytest.mark.parametrize("text", [
    "DE89 3704 0044 0532 0130 01",  # check digits wrong for the rest
    "GB82 WEST 1234 5698 7654 33",
    "DE89 3704 0044 0532 0130 0",  # one character short of Germany's 22
    "ZZ89370400440532013000",  # not a country of the registry
])
def test_it_leaves_ibans_that_fail_their_checks(text):
    assert "iban" not in kinds(f"account {text} end")


def test_the_iban_check_is_iso_13616():
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB01WEST12345698765432")


def test_an_iban_followed_by_another_word_or_iban_is_found_whole():
    text = "DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32 OK"
    assert masked(text) == "[iban] [iban] OK"


@pytest.mark.parametrize("address", [
    "jane.doe@example.com", "jane.doe+news@mail.example.co.uk", "J_D-1%x@sub-domain.example.museum",
])
def test_it_finds_email_addresses(address):
    assert masked(f"write to <{address}> today") == "write to <[email]> today"


@pytest.mark.parametrize("text", ["@mention me", "root@localhost", "a@b.c", "user@ example.com", "x @ y.com"])
def test_it_leaves_what_is_not_an_email_address(text):
    assert "email" not in kinds(text)


@pytest.mark.parametrize("number", [
    "+44 20 7946 0958", "+44 (0) 20 7946 0958", "+1 (555) 123-4567", "+33 1 23 45 67 89", "+4915112345678",
    "+49.151.1234.5678",
])
def test_it_finds_international_phone_numbers(number):
    assert masked(f"call {number} now") == "call [phone] now"


@pytest.mark.parametrize("text", [
    "call 020 7946 0958 now",  # no +: too often some other number
    "x+12345678",  # arithmetic: the + follows a letter
    "+1234567",  # 7 digits
    "+0 123 456 789",  # no country code starts with 0
    "version 2+3 = 5",
])
def test_it_leaves_what_is_not_an_international_phone_number(text):
    assert "phone" not in kinds(text)


def test_only_the_chosen_detectors_run():
    text = "jane@example.com 4111 1111 1111 1111"
    assert [item.kind for item in find(("email",), text)] == ["email"]


def test_masking_keeps_everything_around_the_findings_including_non_ascii_text():
    text = "Grüße — Karte 4111111111111111, E-Mail jürgen@bücher.example? ✓"
    assert masked(text) == "Grüße — Karte [card], E-Mail [email]? ✓"


@pytest.mark.parametrize("text", [
    "1 " * 4096, "4 " * 4096, "4" * 8192, "+1 " * 2730, "a@" * 4096, "DE89 " * 1638, "a.b-" * 2048 + "@",
])
def test_adversarial_8_kb_inputs_are_scanned(text):
    # A backtracking scan would never finish these; re2 and the windowed Luhn sums are linear.
    find(ALL, text)
