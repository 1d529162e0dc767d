"""The layering DESIGN.md and STYLE.md promise, checked by reading the imports with ``ast``.

* platform SDKs are imported only under ``adapters/``;
* a bot under ``bots/`` talks to mnemobot only through its ``ctx``: no storage, no litellm,
  no adapter, no runtime internals;
* ``import litellm`` (seconds of start-up) happens inside functions only, so ``mnemobot
  --help`` and ``mnemobot chat`` start fast;
* every table holding a ``user_id`` is listed for forget and export.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mnemobot.runtime.storage.tables as tables
import pytest
from sqlmodel import SQLModel

REPO = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = {"telegram", "slack_bolt", "slack_sdk"}
BOT_FORBIDDEN = {"sqlmodel", "sqlalchemy", "litellm", "adapters", "runtime"}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the full dotted name, e.g. "slack_sdk.web"
    at_module_level: bool  # runs on import (not inside a function, not under TYPE_CHECKING)

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, path: Path, module_level: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(path, child.lineno, alias.name, module_level)
        elif isinstance(child, ast.ImportFrom):
            if child.level:  # relative: inside the same package, never a third party
                continue
            yield Import(path, child.lineno, child.module or "", module_level)
        elif _runs_later(child):
            yield from _walk(child, path, module_level=False)
        elif isinstance(child, ast.Call) and _is_dynamic_import(child):
            name = child.args[0].value  # type: ignore[attr-defined]
            yield Import(path, child.lineno, name, module_level)
        else:
            # Class bodies, if/try/with blocks at module level run on import too.
            yield from _walk(child, path, module_level)


def _runs_later(node: ast.AST) -> bool:
    """A function body (runs when called) or an ``if TYPE_CHECKING:`` block (never runs)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return True
    return isinstance(node, ast.If) and _is_type_checking(node.test)


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name in ("import_module", "__import__")
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def imports_under(root: Path) -> list[Import]:
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        if ".venv" in path.parts or "__pycache__" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend(_walk(tree, path, module_level=True))
    return found


# --- the reader itself: it must see what it is meant to forbid ---------------------------------


def test_the_import_reader_sees_every_kind_of_import(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "\n".join(
            [
                "import os, slack_sdk.web",
                "from telegram import Bot",
                "from . import sibling",
                "from typing import TYPE_CHECKING",
                "if TYPE_CHECKING:",
                "    import litellm",
                "try:",
                "    import sqlalchemy",
                "except ImportError:",
                "    pass",
                "class Holder:",
                "    import sqlmodel",
                "def later():",
                "    import litellm",
                "    return importlib.import_module('slack_bolt')",
                "async def later_async():",
                "    from litellm import acompletion",
            ]
        ),
        encoding="utf-8",
    )

    seen = [(i.module, i.line, i.at_module_level) for i in imports_under(tmp_path / "pkg")]

    assert seen == [
        ("os", 1, True),
        ("slack_sdk.web", 1, True),
        ("telegram", 2, True),
        ("typing", 4, True),
        ("litellm", 6, False),
        ("sqlalchemy", 8, True),
        ("sqlmodel", 12, True),
        ("litellm", 14, False),
        ("slack_bolt", 15, False),
        ("litellm", 17, False),
    ]


def test_the_reader_finds_the_real_storage_imports():
    modules = {i.top for i in imports_under(REPO / "runtime") if i.path.name == "database.py"}

    assert "sqlalchemy" in modules


# --- the rules -------------------------------------------------------------------------------


def test_nothing_under_runtime_imports_a_platform_sdk():
    offenders = [str(i) for i in imports_under(REPO / "runtime") if i.top in PLATFORM_SDKS]

    assert offenders == []


def test_nothing_under_bots_imports_storage_the_model_or_mnemobot_internals():
    found = imports_under(REPO / "bots")
    offenders = [str(i) for i in found if i.top in BOT_FORBIDDEN]

    assert (REPO / "bots" / "sales-bot" / "bot.py").is_file()
    assert offenders == []


@pytest.mark.parametrize("folder", ["runtime", "adapters"])
def test_litellm_is_imported_only_inside_functions(folder):
    offenders = [
        str(i) for i in imports_under(REPO / folder) if i.top == "litellm" and i.at_module_level
    ]

    assert offenders == []


def test_the_model_client_does_import_litellm_lazily():
    # If litellm.py stopped importing litellm at all, the rule above would pass vacuously.
    lazy = [i for i in imports_under(REPO / "runtime") if i.top == "litellm"]

    assert lazy, "runtime/ no longer imports litellm anywhere"
    assert all(not i.at_module_level for i in lazy)


def test_every_table_with_a_user_id_is_personal():
    with_user_id = {
        name for name, table in SQLModel.metadata.tables.items() if "user_id" in table.c
    }

    assert with_user_id, "no table has a user_id column: is the schema loaded?"
    assert with_user_id - set(tables.PERSONAL_TABLES) == set()
    for name, column in tables.PERSONAL_TABLES.items():
        assert column in SQLModel.metadata.tables[name].c, f"{name}.{column} does not exist"
