"""Key names: the prescribed stream names, one distinct key per id, and every key
spelled in tasks/keys.py only."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

from tasks import keys

REPO = Path(__file__).resolve().parents[2]
# Not ours to scan: environments, installed packages, outputs.
NOT_SOURCES = {".venv", "node_modules", "var", "build"}
# The one module that spells keys, and the test that pins the names the seed prescribes.
MAY_SPELL_KEYS = {Path("tasks/keys.py"), Path("tests/tasks/test_keys.py")}


def test_keys_streams_match_the_contract() -> None:
    assert keys.COMBINED_STREAM == "mikrotik:traffic:customers"
    assert keys.customer_stream("7f0c") == "mikrotik:traffic:customer:7f0c"


def test_keys_are_distinct_per_id_and_kind() -> None:
    names = {
        keys.COMBINED_STREAM,
        keys.GLOBAL_SLOTS,
        keys.LEASES,
        keys.FENCE_COUNTER,
        keys.customer_stream("a"),
        keys.customer_stream("b"),
        keys.router_slots("a"),
        keys.router_slots("b"),
        keys.customer_owner("a"),
        keys.customer_owner("b"),
        keys.session_stop("a"),
        keys.session_stop("b"),
        keys.WATCH_SLOTS,
        keys.WATCH_LEASES,
        keys.watch_router_slots("a"),
        keys.watch_owner("a"),
        keys.watch_stop("a"),
        keys.router_stream("a"),
        keys.router_stream("b"),
        keys.router_view("a"),
        keys.STOP_CHANNEL,
        keys.SESSION_UP_CHANNEL,
        keys.ping_slots("a"),
        keys.ping_slots("b"),
        keys.session_ping("a"),
    }
    assert len(names) == 25
    assert all(name.startswith(keys.PREFIX + ":") for name in names)


def test_keys_customer_id_is_recovered_from_a_stream_name() -> None:
    assert keys.customer_id_from_stream(keys.customer_stream("7f0c")) == "7f0c"
    assert keys.customer_id_from_stream(keys.customer_stream("7f0c").encode()) == "7f0c"
    assert keys.customer_id_from_stream(keys.COMBINED_STREAM) is None
    assert keys.customer_id_from_stream(keys.CUSTOMER_STREAM_PREFIX) is None


def _python_sources() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in NOT_SOURCES)
        for name in sorted(files):
            if name.endswith(".py"):
                yield (Path(folder) / name).relative_to(REPO)


def _key_spellings(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module spells a key: a string constant (an f-string's literal parts too)
    that holds the prefix, or composes one from `keys.PREFIX`. Docstrings and other
    bare string statements are prose, not keys, and comments are not in the tree."""
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            if node.value == keys.PREFIX or f"{keys.PREFIX}:" in node.value:
                found.append((node.lineno, repr(node.value)))
        elif isinstance(node, ast.Attribute) and node.attr == "PREFIX":
            if ast.unparse(node.value).endswith("keys"):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.module == "tasks.keys":
            found.extend(
                (node.lineno, "PREFIX imported from tasks.keys") for a in node.names if a.name == "PREFIX"
            )
    return sorted(found)


def _spellings_in(path: Path) -> list[tuple[int, str]]:
    return _key_spellings(ast.parse((REPO / path).read_text(), str(path)))


def test_keys_are_spelled_only_in_the_keys_module() -> None:
    sources = list(_python_sources())
    assert Path("tasks/keys.py") in sources and Path("bench/stack.py") in sources
    spelled = [
        f"{path}:{line}: {text}"
        for path in sources
        if path not in MAY_SPELL_KEYS
        for line, text in _spellings_in(path)
    ]
    assert not spelled, "Redis keys spelled outside tasks/keys.py (name them there):\n" + "\n".join(spelled)


def test_keys_spelling_check_sees_fstrings_and_the_prefix_and_skips_prose() -> None:
    source = (
        '"""Streams live at mikrotik:traffic:customer:{id}."""\n'
        "from tasks.keys import PREFIX\n"
        "def f(x):\n"
        '    """Reads mikrotik:traffic:customers."""\n'
        '    return f"mikrotik:monitor:{x}:stop", "mikrotik:traffic:*"  # mikrotik:comment\n'
        "def g(x):\n"
        '    return keys.PREFIX + ":other", "mikrotik", "MikroTik", "mikrotik-7"\n'
    )
    assert _key_spellings(ast.parse(source)) == [
        (2, "PREFIX imported from tasks.keys"),
        (5, "'mikrotik:monitor:'"),
        (5, "'mikrotik:traffic:*'"),
        (7, "'mikrotik'"),
        (7, "keys.PREFIX"),
    ]
