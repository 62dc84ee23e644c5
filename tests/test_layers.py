"""The layers of docs/DESIGN.md, checked from the code's imports: only downward, and no cycles.

The layer of each top-level module or package is read from DESIGN's layer table, so the map and
the test cannot drift apart (a new top-level module must be named there). Like import-linter's
``layers`` contract, but a page of ``ast``: every import counts for the direction, and the imports
that run when a module loads (not those inside functions or under TYPE_CHECKING) for cycles.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dispatch"
DESIGN = ROOT / "docs" / "DESIGN.md"

# Entry points above every layer: `python -m dispatch`, and the package root (the version only).
ENTRY_POINTS = {"__main__": 6, "": 0}
# Layer 3 holds one capability per package: a capability may not import another one.
CAPABILITIES = 3

Graph = dict[str, set[str]]


def layers_from_design(text: str) -> dict[str, int]:
    """{top-level name: layer} from the table under DESIGN's "## Layers" heading."""
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            for name in re.findall(r"`([^`]+)`", row.group(2)):
                layers[name.rstrip("/")] = int(row.group(1))
    return layers


def _module_name(path: Path, src: Path) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _resolve(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> Iterator[str]:
    """The project modules one import statement loads (a submodule when it names one)."""
    root = "dispatch"
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.split(".")[0] == root)
        return
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    if base.split(".")[0] != root:
        return
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in known else base


def _load_time_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module loads: not in functions, not under TYPE_CHECKING."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend([*node.body, *node.orelse, *node.finalbody])
            stack.extend(s for handler in node.handlers for s in handler.body)
        elif isinstance(node, ast.With):
            stack.extend(node.body)


def import_graphs(src: Path) -> tuple[Graph, Graph]:
    """(every import, load-time imports) of the package at ``src``, module -> modules."""
    paths = {_module_name(p, src): p for p in src.rglob("*.py")}
    known = set(paths)
    every: Graph = {}
    loading: Graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        every[module] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _resolve(module, is_package, node, known)
        }
        loading[module] = {
            target
            for node in _load_time_imports(tree)
            for target in _resolve(module, is_package, node, known)
        }
    return every, loading


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_offences(graph: Mapping[str, set[str]], layers: Mapping[str, int]) -> list[str]:
    """Imports that point up the layers, or sideways from one capability to another."""
    known = {**layers, **ENTRY_POINTS}
    offences = [
        f"{m}: `{_top(m)}` is in no layer of docs/DESIGN.md"
        for m in sorted(graph)
        if _top(m) not in known
    ]
    for module in sorted(graph):
        mine = known.get(_top(module))
        for imported in sorted(graph[module]):
            theirs = known.get(_top(imported))
            if mine is None or theirs is None or _top(imported) == _top(module):
                continue
            if theirs > mine:
                offences.append(f"{module} (layer {mine}) imports {imported} (layer {theirs})")
            elif theirs == mine == CAPABILITIES:
                offences.append(
                    f"{module} imports {imported}: capabilities (layer 3) "
                    "do not import each other; compose them in jobs/"
                )
    return offences


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Groups of nodes that import each other, directly or round a loop (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: Mapping[str, set[str]]) -> Graph:
    """The graph between top-level modules and packages (store, jobs, web, ...)."""
    packages: Graph = {}
    for module, imported in graph.items():
        mine = packages.setdefault(_top(module) or "dispatch", set())
        mine.update(_top(i) for i in imported if _top(i) and _top(i) != _top(module))
    return packages


def test_imports_only_point_down_the_layers_of_design() -> None:
    every, _ = import_graphs(SRC)
    offences = layer_offences(every, layers_from_design(DESIGN.read_text(encoding="utf-8")))
    assert not offences, "\n".join(offences)


def test_no_module_imports_itself_back_when_loading() -> None:
    _, loading = import_graphs(SRC)
    assert not cycles(loading), cycles(loading)


def test_no_two_packages_import_each_other() -> None:
    every, _ = import_graphs(SRC)
    assert not cycles(package_graph(every)), cycles(package_graph(every))


def test_design_names_the_layers_the_code_has() -> None:
    layers = layers_from_design(DESIGN.read_text(encoding="utf-8"))
    assert layers["errors"] == 1 and layers["store"] == 2
    assert layers["jobs"] == 4 and layers["cli"] == layers["web"] == 5


# The checks themselves, on planted mistakes: a checker that never fails checks nothing.


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src" / "dispatch"
    for name, body in {"__init__.py": "", **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(src).parents:
            (src / parent / "__init__.py").touch()
        path.write_text(body, encoding="utf-8")
    return src


LAYERS = {"errors": 1, "store": 2, "render": 3, "mailer": 3, "jobs": 4, "cli": 5}


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    src = _plant(
        tmp_path,
        {
            "errors.py": "",
            "store/issues.py": "from dispatch.errors import DispatchError\n",
            "jobs/send.py": "from dispatch.store import issues\n",
            # the plant: the store reaching up into a use case, inside a function
            "store/ledger.py": "def f():\n    from dispatch.jobs.send import x\n",
        },
    )
    every, _ = import_graphs(src)
    assert layer_offences(every, LAYERS) == [
        "dispatch.store.ledger (layer 2) imports dispatch.jobs.send (layer 4)"
    ]


def test_a_relative_upward_import_and_a_sideways_capability_are_caught(tmp_path: Path) -> None:
    src = _plant(
        tmp_path,
        {
            "render/message.py": "from ..mailer import pool\nfrom . import page\n",
            "render/page.py": "",
            "mailer/pool.py": "",
            "store/x.py": "from ..cli import main\n",
            "cli/main.py": "",
        },
    )
    every, _ = import_graphs(src)
    offences = layer_offences(every, LAYERS)
    assert "dispatch.store.x (layer 2) imports dispatch.cli.main (layer 5)" in offences
    assert any(
        o.startswith("dispatch.render.message imports dispatch.mailer.pool") for o in offences
    )
    assert len(offences) == 2


def test_a_module_named_in_no_layer_is_caught(tmp_path: Path) -> None:
    every, _ = import_graphs(_plant(tmp_path, {"newthing.py": ""}))
    assert layer_offences(every, LAYERS) == [
        "dispatch.newthing: `newthing` is in no layer of docs/DESIGN.md"
    ]


def test_a_planted_cycle_is_caught_but_a_lazy_import_is_not_one(tmp_path: Path) -> None:
    src = _plant(
        tmp_path,
        {
            "store/a.py": "from dispatch.store import b\n",
            "store/b.py": "from dispatch.store.c import thing\n",
            "store/c.py": "import dispatch.store.a\n",
            "jobs/x.py": "from dispatch.jobs import y\n",
            "jobs/y.py": "def f():\n    from dispatch.jobs import x\n",
        },
    )
    every, loading = import_graphs(src)
    assert cycles(loading) == [["dispatch.store.a", "dispatch.store.b", "dispatch.store.c"]]
    assert ["dispatch.jobs.x", "dispatch.jobs.y"] in cycles(every)


def test_two_packages_importing_each_other_are_caught() -> None:
    graph = {
        "dispatch.store.a": {"dispatch.config"},
        "dispatch.config": {"dispatch.store.b"},
        "dispatch.store.b": set(),
    }
    assert cycles(package_graph(graph)) == [["config", "store"]]
