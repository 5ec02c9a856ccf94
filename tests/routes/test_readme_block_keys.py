"""The README's table of block keys and defaults is routes.block_keys' table: every block, every key, each default
(and, for the resilience blocks, each range), so the documentation cannot promise a number the proxy does not use."""
from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings

from routes.block_keys import BLOCKS, NO_DEFAULT
from routes.resilience_blocks import RULES

ROW = re.compile(r"^\| `(\w+)` \| (.+) \|$")
ITEM = re.compile(r"`(\w+)` \((—|`[^`]*`)(?:, ([^)]+))?\)")


def readme_table() -> dict[str, list[tuple[str, str, str | None]]]:
    """{block: [(key, default as written, range or None)]} from the table after "**Block keys and defaults.**"."""
    text = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    section = text.split("**Block keys and defaults.**", 1)[1].split("\n\n")[1]
    table: dict[str, list[tuple[str, str, str | None]]] = {}
    for line in section.splitlines()[2:]:
        row = ROW.match(line)
        assert row, f"not a row of the table: {line}"
        table[row.group(1)] = [(key, default, span) for key, default, span in ITEM.findall(row.group(2))]
    return table


def _range(block: str, key: str) -> str | None:
    rule = RULES.get(block, {}).get(key)
    if rule is None or rule.kind == "bool":
        return None
    plain = [int(bound) if bound == int(bound) else bound for bound in (rule.low, rule.high)]
    return f"{plain[0]}–{plain[1]}"


def test_the_readme_lists_every_block_and_every_key_of_each():
    table = readme_table()
    assert list(table) == list(BLOCKS)
    for block, items in table.items():
        assert [key for key, _, _ in items] == list(BLOCKS[block].keys), block


def test_each_default_in_the_readme_is_the_one_the_code_declares():
    for block, items in readme_table().items():
        for key, written, _ in items:
            declared = BLOCKS[block].keys[key]
            if declared is NO_DEFAULT:
                assert written == "—", f"{block}.{key} has no default; the README says {written}"
            else:
                assert written != "—" and json.loads(written.strip("`")) == declared, f"{block}.{key}"


def test_each_range_in_the_readme_is_the_one_validation_applies():
    for block, items in readme_table().items():
        for key, _, span in items:
            assert (span or None) == _range(block, key), f"{block}.{key}"
