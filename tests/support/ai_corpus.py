"""A synthetic corpus for the AI routing tests: French sentences, code in several languages, English text and JSON
bodies, generated from small word lists and templates with a seeded RNG (nothing downloaded), and the hidden rule a
stub LLM labels them by (French 1, code 2, everything else 0)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from random import Random

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
