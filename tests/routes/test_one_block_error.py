"""The control plane knows one error for a block that does not compile, protocols.block_errors.BlockError, and reads
its paths from it: no other class for it is defined or caught, and the message parser is gone."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocols", "routes", "metrics", "rusta", "tests", "bench")
# The names of the classes BlockError replaced (three were called PolicyError), and of the message parser.
RETIRED = frozenset({"PolicyError", "GuardConfigError", "JwtPolicyError", "RateLimitPolicyError", "LimitPolicyError",
                     "policy_error_path"})
# Errors from the data plane that routes/ may catch besides BlockError, and why they are not block errors.
NOT_BLOCK_ERRORS = {
    "PathRejected": "protocols.ftp.paths: an FTP user name, password or root, checked before the ftp parser "
                    "(which never raises)",
    "PatternError": "protocols.patterns: a route's path pattern, a field of the route rather than a block",
}


def modules(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def names_in(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.alias):
            found.update(filter(None, (node.name.rsplit(".", 1)[-1], node.asname)))
    return found


def caught_names(handler: ast.ExceptHandler) -> list[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return [kind.id if isinstance(kind, ast.Name) else kind.attr for kind in kinds
            if isinstance(kind, ast.Name | ast.Attribute)]


def test_no_retired_config_error_name_is_left_anywhere():
    left = {f"{path.relative_to(ROOT)}: {name}" for path, tree in modules(*PACKAGES)
            for name in names_in(tree) & RETIRED}
    assert left == set()


def test_routes_catch_no_data_plane_error_but_block_error_and_the_listed_field_errors():
    wrong = []
    for path, tree in modules("routes"):
        from_protocols = {alias.asname or alias.name for node in ast.walk(tree)
                          if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("protocols")
                          for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                wrong += [f"{path.relative_to(ROOT)}:{node.lineno} catches {name}" for name in caught_names(node)
                          if name in from_protocols and name != "BlockError" and name not in NOT_BLOCK_ERRORS]
    assert wrong == []


def test_routes_define_no_value_error_of_their_own():
    defined = [f"{path.relative_to(ROOT)}: {node.name}" for path, tree in modules("routes") for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef)
               and any(isinstance(base, ast.Name) and base.id in ("ValueError", "BlockError") for base in node.bases)]
    assert defined == []

