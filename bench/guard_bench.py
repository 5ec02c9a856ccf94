"""The LLM prompt guard's cost: 50 deny patterns on an 8 KB prompt, Python's re against re2; detectors; worst cases."""
from __future__ import annotations

import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/guard_bench.py`: make the project importable without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import re2  # noqa: E402

from protocols.llm.guard import compile_guard  # noqa: E402
from protocols.llm.guard.detectors import OPTIONS  # noqa: E402

PROMPT_BYTES = 8192
# What operators deny: prompt-injection phrases and secret formats, each a little different so that none is a
# copy of another (50 in all).
PHRASES = ("ignore (?:all )?previous instructions", "disregard (?:the|your) (?:system )?prompt", "jailbreak",
           "DAN mode", "pretend (?:you are|to be) (?:an? )?\\w+", "reveal (?:your|the) (?:system )?prompt",
           "developer mode", "act as (?:an? )?unfiltered", "bypass (?:the )?(?:filter|safety)",
           "repeat the words above")
SECRETS = ("sk-(?:live|test|proj)-[A-Za-z0-9]{20,}", "AKIA[0-9A-Z]{16}", "ghp_[A-Za-z0-9]{36}",
           "-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----", "xox[baprs]-[A-Za-z0-9-]{10,}",
           "AIza[0-9A-Za-z_\\-]{35}", "eyJ[A-Za-z0-9_-]{10,}\\.eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}",
           "(?:password|passwd|pwd)\\s*[:=]\\s*\\S{6,}", "glpat-[A-Za-z0-9_\\-]{20}", "sq0csp-[0-9A-Za-z\\-_]{43}")
WORDS = ("the invoice for march was sent to the customer and the billing team asked whether the refund could be "
         "processed before the end of the quarter so please summarise the thread and draft a polite answer that "
         "explains the delay and lists the next steps with dates").split()


def patterns() -> list[str]:
    found = [f"(?i)\\b{phrase}\\b" for phrase in PHRASES]
    found += [f"(?i){phrase}\\s+(?:now|please|immediately)" for phrase in PHRASES]
    found += list(SECRETS)
    found += [f"(?i)\\bproject[ -]?{name}\\b" for name in ("atlas", "borealis", "cobalt", "delta", "ember",
                                                            "falcon", "gaia", "helios", "ion", "juno")]
    found += [f"(?i)\\b(?:internal|confidential)\\s+{word}\\s+\\d+" for word in
              ("memo", "report", "plan", "budget", "roadmap", "contract", "review", "audit", "forecast", "list")]
    return found


def prompt(rng: random.Random) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < PROMPT_BYTES:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:PROMPT_BYTES]


def median_us(call: Callable[[], object], rounds: int) -> float:
    call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    rng = random.Random(16)
    text = prompt(rng)
    deny = patterns()
    python_re = [re.compile(p) for p in deny]
    each_re2 = [re2.compile(p, OPTIONS) for p in deny]
    guard = compile_guard({"deny": deny})
    detecting = compile_guard({"deny": deny, "detect": ["card", "iban", "email", "phone"], "action": "mask"})
    with_pii = text[:4000] + " card 4111 1111 1111 1111, jane@example.com, +44 20 7946 0958 " + text[4000:8000]
    print(f"{len(deny)} deny patterns, {len(text)}-character prompt that matches none (every pattern reads it all)")
    rows = [
        ("Python re, one search per pattern", median_us(lambda: [p.search(text) for p in python_re], 30)),
        ("re2, one search per pattern", median_us(lambda: [p.search(text) for p in each_re2], 100)),
        ("re2 set (the guard's deny check)", median_us(lambda: guard.check([("user", text)]), 300)),
        ("guard: deny + 4 detectors, masking 3 findings", median_us(lambda: detecting.check([("user", with_pii)]),
                                                                      300)),
    ]
    for name, adversarial in (("digits '1 ' x 4096", "1 " * 4096), ("digits '4 ' x 4096", "4 " * 4096),
                              ("'+1 ' x 2730", "+1 " * 2730), ("'a@' x 4096", "a@" * 4096),
                              ("'x@y.zz ' x 1170 (all real)", "x@y.zz " * 1170)):
        rows.append((f"guard: 4 detectors on {name}", median_us(lambda t=adversarial: detecting.check([("user", t)]),
                                                                 100)))
    for name, micros in rows:
        print(f"  {name:<52} {micros / 1000:8.3f} ms")
    print("Worst case of a backtracking engine: (a+)+$ on 'a' * n + 'b'")
    evil = re.compile("(a+)+$")
    for n in (16, 18, 20, 22):
        micros = median_us(lambda n=n: evil.search("a" * n + "b"), 3)
        print(f"  Python re, n = {n:<5}                                   {micros / 1000:10.3f} ms")
    evil2 = re2.compile("(a+)+$", OPTIONS)
    micros = median_us(lambda: evil2.search("a" * 8191 + "b"), 100)
    print(f"  re2, n = 8191                                           {micros / 1000:10.3f} ms")


if __name__ == "__main__":
    main()
