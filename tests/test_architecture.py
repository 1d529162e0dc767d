"""The layering DESIGN.md and STYLE.md promise, checked by reading the imports with ``ast``.

* platform SDKs are imported only under ``adapters/``;
* a bot under ``bots/`` talks to mnemobot only through its ``ctx``: no storage, no litellm,
  no adapter, no runtime internals;
* ``import litellm`` (seconds of start-up) happens inside functions only, so ``mnemobot
  --help`` and ``mnemobot chat`` start fast;
* every table holding a ``user_id`` is listed for forget and export;
* no import cycles between modules; adapters use only the runtime's public API; only
  ``runtime/app/`` and ``runtime/cli/`` import adapters; only ``runtime/storage/`` knows which
  database dialect is in use; pyproject's package list is the folders on disk; nothing imports
  the old top-level names ``runtime``/``adapters``;
* the error hierarchy in ``runtime/errors.py`` is complete: every exception class the code
  defines and raises is there (or private: its name starts with ``_``), and every class there
  is raised somewhere, or is the base of one that is.
"""

from __future__ import annotations

import ast
import builtins
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import SQLModel

import mnemobot.runtime.storage.tables as tables

REPO = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = {"telegram", "slack_bolt", "slack_sdk"}
BOT_FORBIDDEN = {"sqlmodel", "sqlalchemy", "litellm", "adapters", "runtime"}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the full dotted name, e.g. "slack_sdk.web"
    at_module_level: bool  # runs on import (not inside a function, not under TYPE_CHECKING)
    names: tuple[str, ...] = ()  # what ``from module import ...`` takes

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
            names = tuple(alias.name for alias in child.names)
            yield Import(path, child.lineno, child.module or "", module_level, names)
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


# --- the layers: modules, cycles, the public API, the dialect ----------------------------------

ROOTS = {"runtime": "mnemobot.runtime", "adapters": "mnemobot.adapters"}
PUBLIC_TOP_MODULES = {"errors", "messages", "settings", "clock"}  # mnemobot.runtime.<these>
DIALECT_NAMES = {"sqlite", "postgresql", "postgres"}


def module_names(repo: Path) -> dict[Path, str]:
    """Every module of the installed packages, by file: ``runtime/a/b.py`` is ``mnemobot.runtime.a.b``."""
    names: dict[Path, str] = {}
    for folder, package in ROOTS.items():
        for path in sorted((repo / folder).rglob("*.py")):
            parts = path.relative_to(repo / folder).with_suffix("").parts
            if "__pycache__" in parts or "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names[path] = ".".join((package, *parts))
    return names


def import_graph(repo: Path) -> dict[str, set[str]]:
    """Module -> the mnemobot modules it imports when it is imported (module level only).

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
    the parent packages Python imports on the way are not edges (their ``__init__`` re-exports
    lazily, see runtime/_exports.py).
    """
    names = module_names(repo)
    modules = set(names.values())
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for path, name in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imp in _walk(tree, path, module_level=True):
            if not imp.at_module_level or not imp.module.startswith("mnemobot."):
                continue
            targets = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules]
            if len(targets) < len(imp.names) or not imp.names:
                targets.append(imp.module)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``, one per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_public_runtime_api(module: str, packages: set[str]) -> bool:
    """``mnemobot.runtime``, its top-level modules errors/messages/settings/clock, and the
    ``__init__`` of any runtime package; never a module inside a package."""
    if module == "mnemobot.runtime" or module in packages:
        return True
    parts = module.split(".")
    return len(parts) == 3 and parts[2] in PUBLIC_TOP_MODULES


def runtime_packages(repo: Path) -> set[str]:
    return {
        name
        for path, name in module_names(repo).items()
        if path.name == "__init__.py" and name.startswith("mnemobot.runtime")
    }


def adapter_api_offenders(repo: Path) -> list[Import]:
    packages = runtime_packages(repo)
    return [
        i
        for i in imports_under(repo / "adapters")
        if i.module.startswith("mnemobot.runtime") and not is_public_runtime_api(i.module, packages)
    ]


def runtime_importing_adapters(repo: Path) -> list[Import]:
    allowed = (repo / "runtime" / "app", repo / "runtime" / "cli")
    return [
        i
        for i in imports_under(repo / "runtime")
        if (i.module == "mnemobot.adapters" or i.module.startswith("mnemobot.adapters."))
        and not any(i.path.is_relative_to(folder) for folder in allowed)
    ]


def dialect_mentions(path: Path) -> list[str]:
    """Where a module decides by dialect: a comparison with "sqlite"/"postgresql", a
    ``.dialect.name`` or ``is_sqlite``, ``get_backend_name()``, or ``sqlalchemy.dialects``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                values = [side] + (list(side.elts) if isinstance(side, ast.Tuple | ast.Set) else [])
                if any(isinstance(v, ast.Constant) and v.value in DIALECT_NAMES for v in values):
                    found.append(f"{where} compares with a dialect name")
        elif isinstance(node, ast.Attribute):
            if node.attr == "is_sqlite" or node.attr == "get_backend_name":
                found.append(f"{where} uses {node.attr}")
            elif (
                node.attr == "name"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "dialect"
            ):
                found.append(f"{where} reads .dialect.name")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(m.startswith("sqlalchemy.dialects") for m in modules):
                found.append(f"{where} imports sqlalchemy.dialects")
    return found


def dialect_offenders(repo: Path) -> list[str]:
    storage = repo / "runtime" / "storage"
    found: list[str] = []
    for folder in ("runtime", "adapters", "bots"):
        for path in sorted((repo / folder).rglob("*.py")):
            if "__pycache__" not in path.parts and not path.is_relative_to(storage):
                found.extend(dialect_mentions(path))
    return found


def old_name_imports(root: Path) -> list[Import]:
    return [i for i in imports_under(root) if i.top in ("runtime", "adapters")]


def packages_on_disk(repo: Path) -> set[str]:
    return {
        name
        for path, name in module_names(repo).items()
        if path.name == "__init__.py" and "migrations" not in path.parts
    }


def packages_listed(pyproject: Path) -> set[str]:
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


# --- the error hierarchy --------------------------------------------------------------------

ERRORS_MODULE = Path("runtime") / "errors.py"


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def exception_classes(repo: Path) -> dict[str, Path]:
    """Every class under runtime/ and adapters/ that derives from an exception, by name.

    Bases are followed by name through our own classes down to a builtin exception, so
    ``class A(ValueError)`` and ``class B(A)`` both count, and ``class C(BaseModel)`` does not.
    """
    bases: dict[str, tuple[Path, list[str]]] = {}
    for folder in ROOTS:
        for path in sorted((repo / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases[node.name] = (path, [_base_name(b) for b in node.bases])

    def is_exception(name: str, seen: frozenset[str] = frozenset()) -> bool:
        found = getattr(builtins, name, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return True
        if name not in bases or name in seen:
            return False
        return any(is_exception(b, seen | {name}) for b in bases[name][1])

    return {name: path for name, (path, _) in bases.items() if is_exception(name)}


def raised_names(repo: Path) -> set[str]:
    """The class names ``raise X(...)``, ``raise X`` or ``raise mod.X(...)`` name anywhere."""
    names: set[str] = set()
    for folder in ROOTS:
        for path in sorted((repo / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    names.add(_base_name(exc))
    return names


def hierarchy(repo: Path) -> dict[str, list[str]]:
    """The names runtime/errors.py lists in ``__all__``, each with the bases it defines there
    (none for a class it re-exports from elsewhere)."""
    path = repo / ERRORS_MODULE
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bases: dict[str, list[str]] = {}
    listed: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases[node.name] = [_base_name(b) for b in node.bases]
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            listed = list(ast.literal_eval(node.value))
    return {name: bases.get(name, []) for name in listed}


def errors_outside_the_hierarchy(repo: Path) -> list[str]:
    """Public exception classes that are not in (or re-exported from) runtime/errors.py."""
    listed = hierarchy(repo)
    return sorted(
        f"{path.relative_to(repo)}: {name}"
        for name, path in exception_classes(repo).items()
        if not name.startswith("_") and name not in listed
    )


def errors_nothing_raises(repo: Path) -> list[str]:
    """Classes of runtime/errors.py that no ``raise`` names, directly or through a subclass."""
    listed = hierarchy(repo)
    errors = set(listed) & set(exception_classes(repo))
    used = raised_names(repo) & errors
    while True:
        more = {base for name in used for base in listed.get(name, [])} - used
        if not more:
            break
        used |= more
    return sorted(errors - used)


# --- each rule can fail: the same checks on a small tree that breaks them ---------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return root


def test_the_layer_checks_see_what_they_forbid(tmp_path):
    repo = _tree(
        tmp_path,
        {
            "runtime/__init__.py": "",
            "runtime/errors.py": "",
            "runtime/a.py": "from mnemobot.runtime import b\n",  # b is a module: an edge to it
            "runtime/b.py": "import mnemobot.runtime.c\n",
            "runtime/c.py": "from mnemobot.runtime.a import thing\n",  # a cycle a -> b -> c -> a
            "runtime/d.py": "def later():\n    import mnemobot.runtime.a\n",  # not an edge
            "runtime/pkg/__init__.py": "from mnemobot.runtime.pkg.inner import X\n",
            "runtime/pkg/inner.py": "import mnemobot.runtime.errors\n",  # parent: no edge
            "runtime/pkg/driver.py": (
                "from sqlalchemy.dialects import sqlite\n"
                "import mnemobot.adapters.web\n"
                "def f(db, conn):\n"
                "    return db.dialect == 'postgresql' or conn.dialect.name or db.is_sqlite\n"
            ),
            "runtime/app/__init__.py": "import mnemobot.adapters.web\n",  # allowed here
            "runtime/storage/__init__.py": "NAME = 'x' if 1 else 'y'\n",
            "runtime/storage/dialect.py": "def f(name):\n    return name == 'sqlite'\n",
            "adapters/__init__.py": "",
            "adapters/web/__init__.py": (
                "from mnemobot.runtime import Runtime\n"
                "from mnemobot.runtime.errors import StorageError\n"
                "from mnemobot.runtime.pkg import X\n"
                "from mnemobot.runtime.pkg.inner import Y\n"  # inside a package: refused
                "import runtime.errors\n"  # the old name
            ),
            "pyproject.toml": (
                '[tool.setuptools]\npackages = ["mnemobot.runtime", "mnemobot.adapters"]\n'
            ),
        },
    )

    assert cycles(import_graph(repo)) == [
        ["mnemobot.runtime.a", "mnemobot.runtime.b", "mnemobot.runtime.c"]
    ]
    assert "mnemobot.runtime.pkg" not in import_graph(repo)["mnemobot.runtime.pkg.inner"]
    assert [i.module for i in adapter_api_offenders(repo)] == ["mnemobot.runtime.pkg.inner"]
    assert [i.path.name for i in runtime_importing_adapters(repo)] == ["driver.py"]
    assert sorted(m.split(" ", 1)[1] for m in dialect_offenders(repo)) == [
        "compares with a dialect name",
        "imports sqlalchemy.dialects",
        "reads .dialect.name",
        "uses is_sqlite",
    ]
    assert [str(i.module) for i in old_name_imports(repo)] == ["runtime.errors"]
    assert packages_listed(repo / "pyproject.toml") != packages_on_disk(repo)


def test_the_error_checks_see_what_they_forbid(tmp_path):
    repo = _tree(
        tmp_path,
        {
            "runtime/errors.py": (
                "from mnemobot.runtime.other import Moved\n"  # re-exported: in the hierarchy
                "__all__ = ['Base', 'Idle', 'Moved', 'Plain', 'Used']\n"
                "class Base(Exception): ...\n"
                "class Used(Base): ...\n"  # raised: Used and its base Base count
                "class Idle(Base): ...\n"  # nothing raises it
                "class Plain: ...\n"  # not an exception, nothing to say
            ),
            "runtime/other.py": (
                "from mnemobot.runtime import errors\n"
                "class Moved(KeyError): ...\n"
                "class Stray(ValueError): ...\n"  # public, not in errors.py
                "class Derived(Stray): ...\n"  # an exception through Stray
                "class _Private(Exception): ...\n"  # control flow: exempt
                "class Model: ...\n"
                "def f(x):\n"
                "    if x:\n"
                "        raise errors.Used('a')\n"
                "    if x > 1:\n"
                "        raise Moved\n"
                "    raise Stray('b') from None\n"
            ),
            "adapters/__init__.py": "class AdapterError(RuntimeError): ...\n",
        },
    )

    assert errors_outside_the_hierarchy(repo) == [
        "adapters/__init__.py: AdapterError",
        "runtime/other.py: Derived",
        "runtime/other.py: Stray",
    ]
    assert errors_nothing_raises(repo) == ["Idle"]


# --- the rules on the real tree ----------------------------------------------------------------


def test_no_import_cycles_between_modules():
    graph = import_graph(REPO)

    assert len(graph) > 100, "the module reader found too few modules"
    assert any(graph.values()), "the module reader found no imports"
    assert cycles(graph) == []


def test_adapters_use_only_the_runtime_public_api():
    assert [str(i) for i in adapter_api_offenders(REPO)] == []


def test_only_the_composition_root_and_the_cli_import_adapters():
    assert [str(i) for i in runtime_importing_adapters(REPO)] == []


def test_only_storage_knows_the_database_dialect():
    assert dialect_offenders(REPO) == []


def test_the_package_list_in_pyproject_is_the_folders_on_disk():
    assert packages_listed(REPO / "pyproject.toml") == packages_on_disk(REPO)


def test_every_error_class_is_in_the_hierarchy():
    assert "DialogSyntaxError" in exception_classes(REPO), "the class reader found no errors"
    assert errors_outside_the_hierarchy(REPO) == []


def test_every_class_of_the_hierarchy_is_raised():
    assert "ConfigError" in raised_names(REPO), "the raise reader found no raises"
    assert errors_nothing_raises(REPO) == []


@pytest.mark.parametrize("folder", ["runtime", "adapters", "bots", "tests", "bench"])
def test_nothing_imports_the_old_top_level_names(folder):
    assert [str(i) for i in old_name_imports(REPO / folder)] == []


def test_the_benches_import_nothing_from_the_tests():
    # issue 12: bench/ is one file per claim over its own harness (bench/_common.py,
    # bench/_far_side.py); what a test fake records and injects is no bench's business.
    assert [str(i) for i in imports_under(REPO / "bench") if i.top == "tests"] == []
