"""The layering of STYLE.md §1, checked by walking every import of every module of `sgt`,
including the imports inside functions (a lazy `import torch` counts like any other)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

import sgt

PACKAGE_ROOT = Path(sgt.__file__).parent
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, anywhere in its body."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from sgt.services import models` imports the module sgt.services.models.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


@cache
def import_graph() -> dict[str, frozenset[str]]:
    return {
        module_name(path): frozenset(imported_names(path))
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
    }


def modules_of(*packages: str) -> dict[str, frozenset[str]]:
    prefixes = tuple(f"sgt.{package}" for package in packages)
    chosen = {
        name: imports
        for name, imports in import_graph().items()
        if name in prefixes or name.startswith(tuple(p + "." for p in prefixes))
    }
    assert chosen, f"no modules found for {packages}"
    return chosen


def is_within(name: str, *roots: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def offenders(modules: dict[str, frozenset[str]], forbidden: Iterable[str]) -> list[str]:
    roots = tuple(forbidden)
    return sorted(
        f"{module} imports {imported}"
        for module, imports in modules.items()
        for imported in imports
        if is_within(imported, *roots)
    )


def top_level(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_walk_sees_lazy_imports() -> None:
    # ml/runtime.py imports torch only inside configure_torch.
    assert "torch" in import_graph()["sgt.ml.runtime"]
    assert "sgt.services.models" in import_graph()["sgt.api.routes.models"]


def test_api_and_training_never_import_each_other() -> None:
    assert offenders(modules_of("api"), ["sgt.training"]) == []
    assert offenders(modules_of("training"), ["sgt.api"]) == []


@pytest.mark.parametrize(
    ("libraries", "owners"),
    [
        (["sqlalchemy", "alembic", "psycopg"], ["storage"]),
        (["fastapi", "starlette"], ["api"]),
        (["torch"], ["ml", "training"]),
    ],
)
def test_libraries_are_imported_only_by_their_layer(
    libraries: list[str], owners: list[str]
) -> None:
    owned = tuple(f"sgt.{owner}" for owner in owners)
    others = {
        name: imports for name, imports in import_graph().items() if not is_within(name, *owned)
    }
    assert offenders(others, libraries) == []


def test_domain_imports_only_errors_the_standard_library_and_numpy() -> None:
    allowed = {"numpy"} | STDLIB
    bad = sorted(
        f"{module} imports {imported}"
        for module, imports in modules_of("domain").items()
        for imported in imports
        if not is_within(imported, "sgt.errors", "sgt.domain")
        and top_level(imported) not in allowed
    )
    assert bad == []


def test_the_client_imports_only_the_standard_library_and_itself() -> None:
    bad = sorted(
        f"{module} imports {imported}"
        for module, imports in modules_of("client").items()
        for imported in imports
        if not is_within(imported, "sgt.client") and top_level(imported) not in STDLIB
    )
    assert bad == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("domain", ["sgt.storage", "sgt.services", "sgt.ml", "sgt.api", "sgt.training", "sgt.cli"]),
        ("storage", ["sgt.services", "sgt.ml", "sgt.api", "sgt.training", "sgt.cli"]),
        ("ml", ["sgt.storage", "sgt.services", "sgt.api", "sgt.training", "sgt.cli"]),
        ("services", ["sgt.api", "sgt.training", "sgt.cli"]),
        ("api", ["sgt.cli"]),
        ("training", ["sgt.services", "sgt.cli"]),
    ],
)
def test_imports_point_down_the_layers(package: str, forbidden: list[str]) -> None:
    assert offenders(modules_of(package), forbidden) == []


def test_errors_and_config_stand_alone() -> None:
    for name in ("sgt.errors", "sgt.config"):
        inner = sorted(i for i in import_graph()[name] if is_within(i, "sgt"))
        assert inner == [], name


def import_circles(prefix: str) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself) among
    the modules under `prefix`, counting lazy imports too."""
    graph = import_graph()
    inside = {name for name in graph if is_within(name, prefix)}
    edges = {name: sorted(i for i in graph[name] if i in inside) for name in inside}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's algorithm; the graph is a few dozen modules
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in edges[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1 or name in edges[name]:
                circles.append(sorted(group))

    for name in sorted(inside):
        if name not in index:
            visit(name)
    return circles


def test_the_model_code_has_no_import_circle() -> None:
    assert import_circles("sgt.ml") == []


def test_no_package_has_an_import_circle() -> None:
    assert import_circles("sgt") == []


def test_model_families_are_read_only_through_the_registry() -> None:
    # `std` and checkpoint loading get their families from the registry, never by importing them.
    users = offenders(modules_of("ml.types"), ["sgt.ml.families", "sgt.ml.registry"])
    assert users == []
