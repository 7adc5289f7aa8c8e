"""The shape of the code: no import circles, small modules and constructors, formatter in charge.

The source is read with `ast`, not imported, so an import that only runs inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tokenize
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "service"
MAX_MODULE_LINES = 300
MAX_INIT_PARAMETERS = 7
FORMATTER_OPT_OUT = re.compile(r"#\s*fmt:\s*(?:skip|off)\b")

Graph = Mapping[str, Collection[str]]


def service_modules() -> dict[str, Path]:
    """Module name -> file, for every module of `service/` (`service/store/__init__.py` is
    `service.store`)."""
    modules: dict[str, Path] = {}
    for path in sorted(SERVICE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, source: str, *, is_package: bool, known: Collection[str]) -> set[str]:
    """The modules in `known` that module `name` imports, itself excluded."""
    package = name if is_package else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in _import_statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            # `from base import x` imports the submodule base.x if there is one, else base
            base = _absolute_base(node, package)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        imported.update(module for target in targets if (module := _known_prefix(target, known)))
    imported.discard(name)
    return imported


def _import_statements(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import under `node`, in functions too, but not in an `if TYPE_CHECKING:` body."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    children: Iterable[ast.AST] = ast.iter_child_nodes(node)
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children = node.orelse
    for child in children:
        yield from _import_statements(child)


def _is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute_base(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _known_prefix(target: str, known: Collection[str]) -> str | None:
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if (candidate := ".".join(parts[:end])) in known:
            return candidate
    return None


def module_graph() -> dict[str, set[str]]:
    """Module of `service/` -> the modules of `service/` it imports."""
    modules = service_modules()
    return {
        name: imports_of(
            name, path.read_text("utf-8"), is_package=path.name == "__init__.py", known=modules
        )
        for name, path in modules.items()
    }


def package_of(module: str) -> str:
    """`service.store.pool` -> `service.store`; `service.settings` and `service` stand alone."""
    return ".".join(module.split(".")[:2])


def package_graph(modules: Graph) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, imported in modules.items():
        source = package_of(module)
        targets = packages.setdefault(source, set())
        targets.update(target for target in map(package_of, imported) if target != source)
    return packages


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle for each back edge a depth-first search meets, as `[a, b, ..., a]`."""
    cycles: list[list[str]] = []
    finished: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor in path:
                cycles.append([*path[path.index(successor) :], successor])
            elif successor not in finished:
                visit(successor)
        path.pop()
        finished.add(node)

    for node in sorted(graph):
        if node not in finished:
            visit(node)
    return cycles


def _chains(cycles: list[list[str]]) -> str:
    return "".join(f"\n  {' -> '.join(cycle)}" for cycle in cycles)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_find_cycles_reports_each_circle_as_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "d"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_imports_resolve_to_submodules_or_their_package() -> None:
    known = {
        "service",
        "service.store",
        "service.store.queries",
        "service.http",
        "service.telemetry",
    }
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import queries, helpers\n"
        "from .. import http\n"
        "def later() -> None:\n"
        "    import service.http.auth\n"
        "if TYPE_CHECKING:\n"
        "    from ..telemetry import metrics\n"
    )
    imported = imports_of("service.store.x", source, is_package=False, known=known)
    assert imported == {"service.store.queries", "service.store", "service.http"}
    assert package_graph({"service.store.x": imported}) == {"service.store": {"service.http"}}


def test_no_import_cycle_between_modules() -> None:
    cycles = find_cycles(module_graph())
    assert not cycles, f"import cycles between modules of service/:{_chains(cycles)}"


def test_no_import_cycle_between_packages() -> None:
    cycles = find_cycles(package_graph(module_graph()))
    assert not cycles, f"import cycles between packages of service/:{_chains(cycles)}"


def test_no_module_over_300_lines() -> None:
    lengths = {
        path: len(path.read_text("utf-8").splitlines()) for path in service_modules().values()
    }
    long = [f"{_shown(path)} ({n} lines)" for path, n in lengths.items() if n > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {', '.join(long)}"


def _constructors(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    yield node.name, item


def _parameter_count(function: ast.FunctionDef) -> int:
    """Parameters after `self`: positional, keyword-only, *args and **kwargs."""
    args = function.args
    positional = [*args.posonlyargs, *args.args][1:]
    return (
        len(positional)
        + len(args.kwonlyargs)
        + (args.vararg is not None)
        + (args.kwarg is not None)
    )


def test_no_delivery_constructor_over_7_parameters() -> None:
    # Only explicit `def __init__`: a dataclass's fields describe a value, not collaborators.
    too_many = [
        f"{_shown(path)}:{init.lineno} {cls}.__init__ ({_parameter_count(init)} parameters)"
        for path in sorted((SERVICE / "delivery").rglob("*.py"))
        for cls, init in _constructors(ast.parse(path.read_text("utf-8")))
        if _parameter_count(init) > MAX_INIT_PARAMETERS
    ]
    assert not too_many, (
        f"constructors over {MAX_INIT_PARAMETERS} parameters: {', '.join(too_many)}"
    )


def tracked_python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    # a tracked file someone deleted without staging it has nothing left to check
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).exists()]


def _formatter_opt_outs(path: Path) -> Iterator[int]:
    """Lines of `path` whose comment tells the formatter to keep its hands off."""
    with tokenize.open(path) as file:
        for token in tokenize.generate_tokens(file.readline):
            if token.type == tokenize.COMMENT and FORMATTER_OPT_OUT.search(token.string):
                yield token.start[0]


def test_no_formatter_opt_outs() -> None:
    found = [
        f"{_shown(path)}:{line}"
        for path in tracked_python_files()
        for line in _formatter_opt_outs(path)
    ]
    assert not found, (
        f"{len(found)} formatter opt-out comments (let ruff format decide): {', '.join(found)}"
    )
