"""The local routing model: stable hashed features, agreement with an LLM's hidden rule after warm-up, confidence
high enough to ask the LLM for at most 5% of requests, and following the LLM when its rule changes.

The corpus is tests/support/ai_corpus.py's, generated from word lists with a seeded RNG; its hidden rule labels
French 1, code 2, everything else 0.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.ai.classifier import OnlineClassifier, SparseVector, TextFeatures
from tests.support.ai_corpus import NEW_RULE, RULE, corpus

ROOT = Path(__file__).resolve().parents[3]
THRESHOLD = 0.8  # at or above it the gateway decides locally; below it, it asks the LLM
TRAIN = 1000  # labels of warm-up: the LLM is asked about every request until then
HELD_OUT = 1000

FEATURES = TextFeatures()


def labelled(seed: int, count: int, rule: dict[str, int] = RULE) -> list[tuple[SparseVector, int]]:
    return [(FEATURES(text), rule[kind]) for kind, text in corpus(seed, count)]


def trained(examples: list[tuple[SparseVector, int]], model: OnlineClassifier | None = None) -> OnlineClassifier:
    model = model or OnlineClassifier(classes_max=8)
    for features, label in examples:
        model.learn(features, label)
    return model


def scores(model: OnlineClassifier, examples: list[tuple[SparseVector, int]]) -> tuple[float, float]:
    """(accuracy, share of predictions at or above THRESHOLD) on `examples`."""
    predictions = [(model.predict(features), label) for features, label in examples]
    accuracy = sum(predicted == label for (predicted, _), label in predictions) / len(predictions)
    confident = sum(confidence >= THRESHOLD for (_, confidence), _ in predictions) / len(predictions)
    return accuracy, confident


# --- Features ---------------------------------------------------------------------------------------------------

def test_features_are_distinct_sorted_buckets_of_unit_length():
    indices, values = FEATURES("Le client attend toujours sa facture depuis hier soir.")
    assert list(indices) == sorted(set(indices))
    assert 0 <= indices.min() and indices.max() < FEATURES.dims
    assert abs(float(values @ values) - 1.0) < 1e-9


def test_features_ignore_case_and_keep_the_text_apart_from_another():
    assert FEATURES("SELECT name FROM users").indices.tolist() == FEATURES("select NAME from Users").indices.tolist()
    a, b = FEATURES("select name from users"), FEATURES("Bonjour, je voudrais un rendez-vous.")
    assert len(set(a.indices.tolist()) & set(b.indices.tolist())) < 0.2 * min(len(a.indices), len(b.indices))


def test_features_are_the_same_in_another_process_whatever_its_hash_seed():
    text = "Pourquoi le serveur ne fonctionne plus ? def f(x): return x * 2"
    code = ("import sys\nfrom protocols.ai.classifier import TextFeatures\n"
            f"print(TextFeatures()({text!r}).indices.tolist())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            env=env)
    assert result.stdout.strip() == str(FEATURES(text).indices.tolist())


def test_a_long_text_is_cut_at_max_chars():
    features = TextFeatures(max_chars=100)
    assert features("a b c " * 1000).indices.tolist() == features(("a b c " * 1000)[:100]).indices.tolist()


# --- Learning the LLM's rule ------------------------------------------------------------------------------------

def test_after_warm_up_it_agrees_with_the_hidden_rule_and_needs_the_llm_for_at_most_5_percent():
    model = trained(labelled(seed=1, count=TRAIN))
    accuracy, confident = scores(model, labelled(seed=2, count=HELD_OUT))
    assert accuracy >= 0.95, f"held-out accuracy {accuracy:.3f} after {TRAIN} labels"
    assert confident >= 0.95, f"only {confident:.3f} of held-out predictions reach confidence {THRESHOLD}"


def test_its_confident_predictions_are_right():
    model = trained(labelled(seed=1, count=TRAIN))
    held_out = labelled(seed=2, count=HELD_OUT)
    confident = [(model.predict(features)[0], label) for features, label in held_out
                 if model.predict(features)[1] >= THRESHOLD]
    assert sum(predicted == label for predicted, label in confident) / len(confident) >= 0.99


def test_its_agreement_is_the_share_of_labels_it_predicted_before_learning_them():
    model = OnlineClassifier(classes_max=4, window=10**9)  # a window this long: the plain mean
    examples = labelled(seed=3, count=200)
    agreed = sum(model.learn(features, label) == label for features, label in examples)
    assert model.samples == 200
    assert model.agreement == pytest.approx(agreed / 200)


def test_its_prequential_agreement_reaches_95_percent_during_training():
    model = OnlineClassifier(classes_max=4)
    trained(labelled(seed=1, count=TRAIN), model)
    assert model.agreement >= 0.95, f"prequential agreement over the last ~200 labels: {model.agreement:.3f}"


def test_it_is_never_confident_before_warm_up():
    model = OnlineClassifier(classes_max=4, warmup=20)
    examples = labelled(seed=4, count=20)
    assert model.predict(examples[0][0]) == (0, 0.0)
    for features, label in examples[:19]:
        model.learn(features, label)
    assert {model.predict(features)[1] for features, _ in examples} == {0.0}
    model.learn(*examples[19])
    assert max(model.predict(features)[1] for features, _ in examples) > 0.0


def test_it_grows_a_class_when_a_new_label_appears():
    model = OnlineClassifier(classes_max=8, warmup=0)
    features = FEATURES("SELECT 1;")
    model.learn(features, 0)
    assert model.classes == 1
    model.learn(features, 5)
    assert model.classes == 6
    assert model.predict(features)[0] == 5


def test_it_refuses_a_label_beyond_classes_max():
    with pytest.raises(ValueError, match="label 4 is outside"):
        OnlineClassifier(classes_max=4).learn(FEATURES("x"), 4)


def test_it_follows_the_llm_when_the_rule_changes():
    model = trained(labelled(seed=1, count=TRAIN))
    before = model.agreement
    changed = labelled(seed=5, count=TRAIN, rule=NEW_RULE)
    trained(changed[:100], model)
    assert model.agreement < before - 0.1, "the operator sees agreement drop when the LLM changes its rule"
    trained(changed[100:], model)
    accuracy, confident = scores(model, labelled(seed=6, count=HELD_OUT, rule=NEW_RULE))
    assert accuracy >= 0.95, f"held-out accuracy on the new rule {accuracy:.3f}"
    assert confident >= 0.95
    assert model.agreement >= 0.95, f"prequential agreement on the new rule: {model.agreement:.3f}"
