"""Usage is read exactly as each provider reports it, and written back out without losing a token."""
from __future__ import annotations

import pytest

from protocols.llm.formats import usage
from protocols.llm.formats.chat import Usage


def test_openai_usage_keeps_its_cached_tokens():
    read = usage.from_openai({"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
                              "prompt_tokens_details": {"cached_tokens": 1024}})
    assert read == Usage(input_tokens=1117, output_tokens=46, cached_input_tokens=1024)


def test_anthropic_message_delta_figures_overwrite_and_missing_ones_keep_message_start():
    start = usage.from_anthropic({"input_tokens": 10, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 5, "output_tokens": 1})
    final = usage.from_anthropic({"output_tokens": 42}, start)
    assert final == Usage(input_tokens=115, output_tokens=42, cached_input_tokens=100, cache_write_tokens=5)


def test_ollama_counts_are_the_usage():
    assert usage.from_ollama({"done": True, "prompt_eval_count": 26, "eval_count": 298}) == Usage(26, 298)
    assert usage.from_ollama({"done": False}) is None


@pytest.mark.parametrize("figures", [Usage(1117, 46, 1024, 0), Usage(6146, 503, 4000, 2051), Usage(0, 3)])
def test_usage_survives_a_trip_through_both_formats(figures):
    assert usage.from_openai(usage.to_openai(figures)) == Usage(figures.input_tokens, figures.output_tokens,
                                                                figures.cached_input_tokens)
    assert usage.from_anthropic(usage.to_anthropic(figures)) == figures


def test_a_count_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError):
        usage.from_openai({"prompt_tokens": "many"})
