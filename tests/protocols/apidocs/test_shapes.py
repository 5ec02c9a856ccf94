"""protocols.apidocs.shapes: the shape of a JSON value (types, keys, items, formats, ranges, small enums) and how
shapes merge; never a value beyond a short word-like enum candidate."""
from __future__ import annotations

import json

import pytest

from protocols.apidocs.shapes import MAX_ENUM, merge, scalar_shape, shape_of, string_format


@pytest.mark.parametrize(("text", "fmt"), [
    ("3f2b8c1e-9a4d-4b7e-8f10-2c3d4e5f6a7b", "uuid"),
    ("2026-12-07T04:30:41Z", "date-time"),
    ("2026-12-07T04:30:41.123+01:00", "date-time"),
    ("2026-12-07", "date"),
    ("alice@example.com", "email"),
    ("https://api.example.com/v1?x=1", "uri"),
    ("10.0.0.5", "ipv4"),
    ("2001:db8::1", "ipv6"),
    ("999.1.1.1", ""),
    ("hello world", ""),
])
def test_it_names_the_format_of_a_string(text, fmt):
    assert string_format(text) == fmt


def test_an_object_shape_has_its_keys_types_and_ranges():
    shape = shape_of({"id": 7, "price": 2.5, "ok": True, "tags": ["a"], "parent": None, "meta": {"k": "v"}})
    props = shape["types"]["object"]["properties"]
    assert set(props) == {"id", "price", "ok", "tags", "parent", "meta"}
    assert props["id"]["types"] == {"integer": {"n": 1, "min": 7, "max": 7}}
    assert list(props["price"]["types"]) == ["number"]
    assert list(props["ok"]["types"]) == ["boolean"]
    assert list(props["parent"]["types"]) == ["null"]
    assert list(props["tags"]["types"]["array"]["items"]["types"]) == ["string"]
    assert list(props["meta"]["types"]["object"]["properties"]) == ["k"]


def test_merging_counts_each_key_so_a_missing_one_is_seen_less_often_than_its_object():
    merged = merge(shape_of({"a": 1, "b": 1}), shape_of({"a": 5}))
    detail = merged["types"]["object"]
    assert detail["n"] == 2
    assert detail["properties"]["a"]["n"] == 2 and detail["properties"]["b"]["n"] == 1
    assert detail["properties"]["a"]["types"]["integer"] == {"n": 2, "min": 1, "max": 5}


def test_conflicting_types_are_kept_side_by_side():
    merged = merge(merge(shape_of(1), shape_of("x")), shape_of(None))
    assert set(merged["types"]) == {"integer", "string", "null"}


def test_a_few_short_words_are_an_enum_and_more_are_just_a_string():
    shape = None
    for word in ["active", "paused", "active"]:
        shape = merge(shape, shape_of(word))
    assert shape["types"]["string"]["enum"] == ["active", "paused"]
    for index in range(MAX_ENUM):
        shape = merge(shape, shape_of("state" + "abcdefgh"[index]))
    assert shape["types"]["string"]["enum"] is None


@pytest.mark.parametrize("value", ["sk_live_4eC39HqLyjWDarjt", "alice@example.com", "a" * 40, "3f2b8c1e-9a4d-4b7e"
                                   "-8f10-2c3d4e5f6a7b"])
def test_values_with_digits_formats_or_length_never_become_enum_candidates(value):
    assert shape_of(value)["types"]["string"]["enum"] is None


def test_the_value_of_a_secret_looking_key_is_never_an_enum_candidate():
    shape = shape_of({"password": "hunter", "api_key": "letmein", "mode": "fast"})
    props = shape["types"]["object"]["properties"]
    assert props["password"]["types"]["string"]["enum"] is None
    assert props["api_key"]["types"]["string"]["enum"] is None
    assert props["mode"]["types"]["string"]["enum"] == ["fast"]


def test_keys_that_are_data_are_left_out_and_the_object_marked_open():
    shape = shape_of({"alice@example.com": 1, "12345": 2, "name": "x"})
    detail = shape["types"]["object"]
    assert list(detail["properties"]) == ["name"] and detail["open"] is True
    assert "alice@example.com" not in json.dumps(shape) and "12345" not in json.dumps(shape)


def test_text_values_read_as_numbers_booleans_or_strings():
    assert list(scalar_shape("42")["types"]) == ["integer"]
    assert list(scalar_shape("4.2")["types"]) == ["number"]
    assert list(scalar_shape("true")["types"]) == ["boolean"]
    assert scalar_shape("2026-12-07")["types"]["string"]["formats"] == {"date": 1}
