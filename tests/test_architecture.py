"""The package's shape: no import cycle, a public API apart from the internals, and old paths that still work.

The layers themselves are import-linter contracts (``lint-imports``, in ``make lint``; see pyproject.toml and
docs/architecture.md). These tests add what import-linter does not say by itself: that no cycle exists at
all, counting the imports made inside functions and under ``TYPE_CHECKING``, as Python would follow them;
that every public module says what it exports; and that what the README and the docs show is public.
"""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "flask_discord_roles"
# Alembic loads our revision scripts by path; they are files, not modules anyone imports.
NOT_MODULES = (PACKAGE / "migrations" / "versions",)


# -- import cycles --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One import statement: ``importer`` imports ``imported`` at ``line`` of the importer's file."""

    importer: str
    imported: str
    line: int


def modules_of(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name, for its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """Every import in the file, wherever it is written: at the top, in a function, under TYPE_CHECKING.

    ``from pkg import sub`` imports ``pkg`` (its ``__init__`` runs first) and ``pkg.sub``; a name that is
    not a module counts as its nearest enclosing module.
    """
    is_package = path.name == "__init__.py"
    top = name.split(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] == top and target != name:
                yield Edge(name, target, node.lineno)


def import_graph(package: Path) -> dict[str, dict[str, Edge]]:
    """Who imports whom inside ``package``: importer -> {imported: the first statement that does it}."""
    modules = modules_of(package)
    graph: dict[str, dict[str, Edge]] = {name: {} for name in modules}
    for name, path in modules.items():
        for edge in imports_of(name, path, modules):
            graph[name].setdefault(edge.imported, edge)
    return graph


def strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[list[str]]:
    """The groups of more than one module that all reach each other (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return sorted(groups, key=len, reverse=True)


def shortest_cycle(graph: dict[str, dict[str, Edge]], group: list[str]) -> list[Edge]:
    """A shortest way round one group, as the import statements that make it."""
    start, members = group[0], set(group)
    came_from: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for imported, edge in graph[node].items():
            if imported == start:
                cycle = [edge]
                while cycle[0].importer != start:
                    cycle.insert(0, came_from[cycle[0].importer])
                return cycle
            if imported in members and imported not in came_from:
                came_from[imported] = edge
                queue.append(imported)
    raise AssertionError(f"{group} is not a cycle")  # strongly_connected only returns cycles


def describe_cycles(package: Path) -> str:
    """Each cycle in words, one import statement a line; empty when there is none."""
    graph = import_graph(package)
    described = []
    for group in strongly_connected(graph):
        steps = "\n".join(
            f"    {edge.importer} imports {edge.imported} "
            f"({modules_of(package)[edge.importer].relative_to(package.parent)}:{edge.line})"
            for edge in shortest_cycle(graph, group)
        )
        described.append(f"  a cycle through {len(group)} modules ({', '.join(group)}), for one:\n{steps}")
    return "\n".join(described)


def test_the_package_has_no_import_cycle_counting_imports_inside_functions_and_under_type_checking() -> None:
    cycles = describe_cycles(PACKAGE)
    assert not cycles, (
        "flask_discord_roles imports itself round in a circle; move the shared piece down a layer "
        f"(docs/architecture.md) instead of deferring an import:\n{cycles}"
    )


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "pkg"


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "def later():\n    from pkg.b import thing\n",
                "pkg/b.py": "import pkg.a\nthing = 1\n",
            },
            id="an-import-inside-a-function",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import thing\n",
                "pkg/b.py": "from pkg import a\nthing = 1\n",
            },
            id="a-relative-import-under-type-checking",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from pkg.inner.b import thing\n",
                "pkg/inner/__init__.py": "",
                "pkg/inner/b.py": "from pkg import inner\nthing = 1\n",
            },
            id="from-pkg-import-sub-imports-pkg-init",
        ),
    ],
)
def test_the_cycle_check_sees_every_kind_of_import(tmp_path: Path, files: dict[str, str]) -> None:
    cycles = describe_cycles(_write_package(tmp_path, files))
    assert "a cycle through 2 modules" in cycles, f"a cycle of two modules went unseen: {cycles!r}"


def test_the_cycle_check_shows_the_way_round(tmp_path: Path) -> None:
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import os\nfrom pkg import b\n",
            "pkg/b.py": "from pkg.c import x\n",
            "pkg/c.py": "def f():\n    import pkg.a\nx = 1\n",
        },
    )
    assert describe_cycles(package).splitlines()[1:] == [
        "    pkg.a imports pkg.b (pkg/a.py:2)",
        "    pkg.b imports pkg.c (pkg/b.py:1)",
        "    pkg.c imports pkg.a (pkg/c.py:2)",
    ]


# -- public apart from internal ------------------------------------------------------------------------


def is_internal(module: str) -> bool:
    """A module is internal when any part of its dotted path starts with an underscore."""
    return any(part.startswith("_") for part in module.split("."))


def public_modules() -> list[str]:
    return [
        name
        for name, path in modules_of(PACKAGE).items()
        if not is_internal(name) and not any(path.is_relative_to(folder) for folder in NOT_MODULES)
    ]


def test_public_modules_are_found() -> None:
    names = public_modules()
    assert {"flask_discord_roles", "flask_discord_roles.deliveries", "flask_discord_roles.testing"} <= set(
        names
    )
    assert not [name for name in names if "._" in name], "an internal module counted as public"


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_module_says_what_it_exports_and_exports_only_what_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, (
        f"{module_name} is public (no leading underscore in its path) but has no __all__: list what "
        "hosts may use, or make the module internal with a leading underscore"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated paths still answer, with a warning
        missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what the module does not have: {missing}"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ repeats a name"


@dataclass(frozen=True)
class ShownImport:
    """An import of ours in a documentation snippet."""

    document: str
    line: int
    module: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        shown = (
            f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"
        )
        return f"{self.document}:{self.line}: {shown}"


def python_blocks(path: Path) -> Iterator[tuple[int, str]]:
    """Each ```python block of a Markdown file, dedented, with the line its code starts on."""
    text = path.read_text(encoding="utf-8")
    for match in re.finditer(r"^([ \t]*)```python\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL):
        yield text.count("\n", 0, match.start(2)) + 1, textwrap.dedent(match.group(2))


def shown_imports(path: Path) -> Iterator[ShownImport]:
    for first_line, code in python_blocks(path):
        tree = ast.parse(code, f"{path.name}:{first_line}")
        for node in ast.walk(tree):
            line = first_line + getattr(node, "lineno", 1) - 1
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE.name:
                        yield ShownImport(path.name, line, alias.name, ())
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE.name:
                yield ShownImport(path.name, line, node.module or "", tuple(a.name for a in node.names))


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def test_the_readme_and_the_docs_show_python_snippets_that_import_from_us() -> None:
    assert list(shown_imports(ROOT / "README.md")), "the README's ```python blocks went unread"
    shown = [shown for page in DOCUMENTS for shown in shown_imports(page)]
    assert len(shown) >= 10, "the docs' ```python blocks went unread"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_documentation_snippets_import_only_the_public_api(document: Path) -> None:
    internal = [
        str(shown)
        for shown in shown_imports(document)
        if is_internal(shown.module) or any(name.startswith("_") for name in shown.names)
    ]
    assert not internal, (
        f"{document.name} shows internal imports (a leading underscore); show the public API instead:\n"
        + "\n".join(internal)
    )
    unexported = []
    for shown in shown_imports(document):
        if is_internal(shown.module):
            continue
        module = importlib.import_module(shown.module)
        unexported += [f"{shown} ({name})" for name in shown.names if name not in module.__all__]
    assert not unexported, (
        f"{document.name} imports names that their module does not export in __all__:\n"
        + "\n".join(unexported)
    )


# -- deprecated import paths ---------------------------------------------------------------------------

MOVED = [
    ("flask_discord_roles.crypto", "generate_key", "flask_discord_roles._runtime.crypto"),
    ("flask_discord_roles.config", "ConfigurationError", "flask_discord_roles.errors"),
    ("flask_discord_roles.extension", "DiscordRoles", "flask_discord_roles._extension"),
    ("flask_discord_roles.extension", "get_state", "flask_discord_roles._runtime.state"),
    ("flask_discord_roles.extension", "DiscordRolesState", "flask_discord_roles._runtime.state"),
    ("flask_discord_roles.models", "Models", "flask_discord_roles._runtime.models"),
    ("flask_discord_roles.models", "Delivery", "flask_discord_roles._runtime.models"),
    ("flask_discord_roles.models", "utcnow", "flask_discord_roles._runtime.models"),
    ("flask_discord_roles.timestamps", "format_timestamp", "flask_discord_roles._runtime.timestamps"),
    ("flask_discord_roles.timestamps", "FORMAT", "flask_discord_roles._runtime.timestamps"),
    ("flask_discord_roles", "get_state", "flask_discord_roles._runtime.state"),
    ("flask_discord_roles", "DiscordRolesState", "flask_discord_roles._runtime.state"),
]


@pytest.mark.parametrize(("old_module", "name", "home"), MOVED, ids=[f"{m}.{n}" for m, n, _ in MOVED])
def test_an_old_import_path_still_gives_the_same_object_with_a_warning_at_the_callers_line(
    old_module: str, name: str, home: str
) -> None:
    module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(old_module)}\.{name} is deprecated") as caught:
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name), f"{old_module}.{name} is another object"
    assert caught[0].filename == __file__, "the warning must point at the line that imported the old path"


def test_the_old_paths_name_where_to_import_from_now() -> None:
    with pytest.warns(DeprecationWarning, match="import it from flask_discord_roles"):
        from flask_discord_roles.crypto import generate_key  # noqa: F401
    with pytest.warns(DeprecationWarning, match="import it from flask_discord_roles"):
        from flask_discord_roles.config import ConfigurationError  # noqa: F401
    with pytest.warns(DeprecationWarning, match="import it from flask_discord_roles"):
        from flask_discord_roles.extension import DiscordRoles  # noqa: F401


def test_an_old_path_knows_only_the_names_it_had() -> None:
    import flask_discord_roles.crypto as old

    with pytest.raises(AttributeError, match="no attribute 'TokenCipher'"):
        _ = old.TokenCipher
