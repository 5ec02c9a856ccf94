"""metrics.apidocs.compare: path recall and field-level precision, recall and F1 of two documents."""
from __future__ import annotations

import pytest

from metrics.apidocs.compare import compare


def doc(paths: dict) -> dict:
    return {"openapi": "3.0.3", "paths": paths}


def get(schema: dict) -> dict:
    return {"get": {"responses": {"200": {"description": "", "content": {"application/json": {"schema": schema}}}}}}


def obj(*names: str, **nested: dict) -> dict:
    return {"type": "object", "properties": {**{n: {"type": "string"} for n in names}, **nested}}


def test_paths_match_by_position_whatever_their_parameter_names():
    reference = doc({"/users/{id}/": get(obj("a")), "/users/": get(obj("a")), "/orders/": get(obj("a"))})
    learned = doc({"/users/{b}": get(obj("a")), "/users": get(obj("a"))})
    result = compare(learned, reference)
    assert result.path_recall == pytest.approx(2 / 3) and result.missing_paths == ["/orders"]


def test_field_figures_count_found_extra_and_missed_fields():
    reference = doc({"/u": get(obj("a", "b", "c", "d"))})
    learned = doc({"/u": get(obj("a", "b", "c", "z"))})
    result = compare(learned, reference)
    assert (result.true_positives, len(result.false_positives), len(result.false_negatives)) == (3, 1, 1)
    assert result.precision == result.recall == result.f1 == pytest.approx(0.75)


def test_fields_under_a_free_form_object_of_the_reference_are_not_counted():
    reference = doc({"/u": get(obj("a", meta={"type": "object"}))})
    learned = doc({"/u": get(obj("a", meta=obj("x", "y")))})
    result = compare(learned, reference)
    assert result.f1 == 1.0 and result.true_positives == 2
