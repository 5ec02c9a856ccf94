"""The local routing model: stable hashed features, agreement with an LLM's hidden rule after warm-up, confidence
high enough to ask the LLM for at most 5% of requests, and following the LLM when its rule changes.

The corpus is generated here from small word lists and templates with a seeded RNG: French sentences, code in
several languages, English text and JSON bodies. The hidden rule labels French 1, code 2, everything else 0.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from random import Random

import pytest

from protocols.ai.classifier import OnlineClassifier, SparseVector, TextFeatures

ROOT = Path(__file__).resolve().parents[3]
THRESHOLD = 0.8  # at or above it the gateway decides locally; below it, it asks the LLM
TRAIN = 1000  # labels of warm-up: the LLM is asked about every request until then
HELD_OUT = 1000

# --- The synthetic corpus ---------------------------------------------------------------------------------------

FR_SUBJECTS = ["Le client", "La facture", "Notre équipe", "Mon voisin", "Cette commande", "Le serveur",
               "La réunion", "Votre colis", "Le directeur", "Ma sœur", "Le train de Lyon", "La banque",
               "Un collègue", "Le médecin", "Les enfants", "La mairie", "Ce logiciel", "Le fournisseur"]
FR_VERBS = ["doit être envoyée", "arrive demain", "est en retard", "a été annulée", "demande une réponse",
            "ne fonctionne plus", "sera livré", "voudrait savoir", "attend toujours", "a oublié le dossier",
            "cherche un rendez-vous", "n'a pas reçu le paiement", "propose une solution", "refuse de payer"]
FR_ENDS = ["avant vendredi", "pour le mois prochain", "à cause de la grève", "depuis hier soir",
           "selon le contrat", "sans aucune explication", "malgré nos efforts", "dès que possible",
           "chez nous", "après la fermeture", "au bureau de Paris", "cette semaine", "pour la troisième fois"]
FR_OPENERS = ["Bonjour,", "Madame, Monsieur,", "Pourquoi", "Je vous écris car", "Merci de noter que",
              "Pouvez-vous confirmer que", "Il semble que", "Nous pensons que", ""]

EN_SUBJECTS = ["The customer", "Our invoice", "My team", "The new server", "This order", "The meeting",
               "Your package", "The manager", "My brother", "The train to Boston", "The bank", "A colleague",
               "The doctor", "The children", "The city council", "This software", "The supplier"]
EN_VERBS = ["must be sent", "arrives tomorrow", "is running late", "was cancelled", "asks for an answer",
            "stopped working", "will be delivered", "would like to know", "is still waiting", "forgot the file",
            "needs an appointment", "did not receive the payment", "suggests a fix", "refuses to pay"]
EN_ENDS = ["before Friday", "for next month", "because of the strike", "since last night",
           "under the contract", "without any explanation", "despite our efforts", "as soon as possible",
           "at our place", "after closing time", "at the London office", "this week", "for the third time"]
EN_OPENERS = ["Hello,", "Dear team,", "Why", "I am writing because", "Please note that", "Can you confirm that",
              "It seems that", "We think that", ""]

NAMES = ["user", "order", "total", "price", "items", "count", "result", "value", "index", "name", "config",
         "request", "response", "buffer", "cache", "client", "payload", "status", "limit", "offset"]


def ident(rng: Random) -> str:
    first, second = rng.sample(NAMES, 2)
    return rng.choice([first, f"{first}_{second}", f"{first}{second.capitalize()}"])


def sentence(rng: Random, openers: list[str], subjects: list[str], verbs: list[str], ends: list[str]) -> str:
    opener = rng.choice(openers)
    body = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(ends)}"
    if opener:
        body = f"{opener} {body[0].lower()}{body[1:]}"
    return body + rng.choice([".", ".", "!", " ?" if subjects is FR_SUBJECTS else "?"])


FR_SHORT = ["Merci beaucoup !", "Bonne journée.", "C'est urgent.", "À demain ?", "Oui, d'accord.",
            "Je ne comprends pas.", "Rien reçu.", "Encore en panne", "Où est ma commande ?", "Ça marche !"]
EN_SHORT = ["Thanks a lot!", "Have a nice day.", "This is urgent.", "See you tomorrow?", "Yes, fine.",
            "I do not understand.", "Nothing received.", "Down again", "Where is my order?", "It works!"]


def french(rng: Random) -> str:
    """One to four sentences, or a short phrase (a third of the time), sometimes naming an identifier."""
    if rng.random() < 0.3:
        return rng.choice(FR_SHORT)
    text = " ".join(sentence(rng, FR_OPENERS, FR_SUBJECTS, FR_VERBS, FR_ENDS) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        text += f" La fonction `{ident(rng)}()` renvoie une erreur {rng.randint(400, 599)}."
    return text


def english(rng: Random) -> str:
    """As `french`: English prose that mentions code is still prose (label 0), not code."""
    if rng.random() < 0.3:
        return rng.choice(EN_SHORT)
    text = " ".join(sentence(rng, EN_OPENERS, EN_SUBJECTS, EN_VERBS, EN_ENDS) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        text += f" The function `{ident(rng)}()` returns error {rng.randint(400, 599)}."
    return text


CODE = [
    "def {f}({a}, {b}):\n    if not {a}:\n        return {b}\n    return [{x} * 2 for {x} in {a}]\n",
    "import json\n\nclass {F}:\n    def __init__(self, {a}):\n        self.{a} = {a}\n",
    "function {f}({a}) {{\n  const {b} = {a}.map(({x}) => {x} + 1);\n  return {b}.length;\n}}\n",
    "export const {f} = async ({a}) => {{ await fetch(`/api/${{{a}}}`); }};",
    "func {F}({a} int, {b} string) ({c}, error) {{\n\tif {a} == 0 {{\n\t\treturn nil, err\n\t}}\n}}\n",
    "SELECT {a}, {b}, COUNT(*) FROM {c} WHERE {a} > {n} GROUP BY {a}, {b} ORDER BY {b} DESC;",
    "fn {f}({a}: &[i32]) -> Option<i32> {{\n    {a}.iter().map(|{x}| {x} * {n}).max()\n}}\n",
    "#include <stdio.h>\nint {f}(int {a}) {{\n    for (int i = 0; i < {a}; i++) {{ printf(\"%d\\n\", i); }}\n"
    "    return {n};\n}}\n",
    "public static int {f}(List<Integer> {a}) {{\n    return {a}.stream().mapToInt(Integer::intValue).sum();\n}}",
    "{a} = {{}}\nfor {x} in range({n}):\n    {a}[{x}] = {b}.get({x}, None)\nprint({a})\n",
    "# fetch the {a} before the {b}\n{a} = get_{a}({x})\n",
    "// the {b} is cached for {n} seconds\nlet {a} = {b}?.{x} ?? {n};",
    "{a} := {b}[{n}]",
    "return {a} if {b} else None",
]


def code(rng: Random) -> str:
    names = {key: ident(rng) for key in "fabcx"}
    names["F"] = "".join(part.capitalize() for part in names["f"].split("_"))
    snippets = [rng.choice(CODE).format(n=rng.randint(0, 999), **names) for _ in range(rng.randint(1, 2))]
    return "\n".join(snippets)


def json_body(rng: Random) -> str:
    body: dict[str, object] = {ident(rng): rng.randint(0, 10_000) for _ in range(rng.randint(1, 4))}
    body[ident(rng)] = sentence(rng, EN_OPENERS, EN_SUBJECTS, EN_VERBS, EN_ENDS)
    if rng.random() < 0.5:
        body[ident(rng)] = {ident(rng): rng.choice([True, False, None]), "tags": rng.sample(NAMES, 3)}
    return json.dumps(body, indent=rng.choice([None, 2]))


KINDS: dict[str, Callable[[Random], str]] = {"french": french, "code": code, "english": english, "json": json_body}
RULE = {"french": 1, "code": 2, "english": 0, "json": 0}
NEW_RULE = {"french": 2, "code": 1, "english": 0, "json": 3}  # two backends swapped, JSON to a new one


def corpus(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """(kind, text) pairs, the kinds in equal shares."""
    rng = Random(seed)
    kinds = list(KINDS)
    for _ in range(count):
        kind = rng.choice(kinds)
        yield kind, KINDS[kind](rng)


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
