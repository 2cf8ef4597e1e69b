"""Imports point down: every module of legend_demo belongs to a declared layer and imports only from its own layer
or the layers below it, and no two modules import each other, directly or round a loop.

The check reads the source (an AST scan: every `import` and `from … import`, at the top of a file or inside a
function — a lazy import is still an arrow), so it needs no models and runs in the fast tier. Imports under
`if TYPE_CHECKING:` are annotations only and do not count. A new module must be given a layer here.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "legend_demo"

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core: infrastructure (legend_demo/core/)", ("legend_demo", "legend_demo.core")),
    ("anatomy: the film's lung fields, orientation and the words that name anatomy", (
        "legend_demo.grounding.atlas", "legend_demo.grounding.lung_fit", "legend_demo.grounding.lung_cores",
        "legend_demo.grounding.lung_fields", "legend_demo.grounding.orientation", "legend_demo.grounding.anatomy",
        "legend_demo.grounding.lexicon", "legend_demo.grounding.mentions",
    )),
    ("method: the thesis's maths and the change on the film (legend_demo/method/)", ("legend_demo.method",)),
    ("grounding: text → lesion points", ("legend_demo.grounding",)),
    ("models: the AR backbone and the embedded model", ("legend_demo.ar", "legend_demo.embedded")),
    ("engines", ("legend_demo.engines",)),
    ("applications: data, training, evaluation, reader studies", (
        "legend_demo.synth", "legend_demo.training", "legend_demo.evaluation", "legend_demo.study",
    )),
    ("interfaces: the page, the CLI", (
        "legend_demo.ui", "legend_demo.commands", "legend_demo.cli", "legend_demo.__main__",
    )),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int | None:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    return index


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    return skipped


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The legend_demo modules `module` imports (a `from package import name` counts as package.name when that is a
    module, else as the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names if a.name.split(".")[0] == "legend_demo"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "legend_demo":
                base = node.module
            else:
                continue
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    resolved = set()
    for target in targets:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != module:
            resolved.add(target)
    return resolved


@lru_cache(maxsize=1)
def graph() -> dict[str, frozenset[str]]:
    """module → the modules it imports (read once per session: the source does not change under the tests)."""
    known = modules()
    return {name: frozenset(imports(name, path, known)) for name, path in known.items()}


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, f"give these modules a layer in tests/test_layering.py: {missing}"


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def test_no_import_loops():
    edges = graph()
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not loops, f"modules that import each other (directly or round a loop): {loops}"


def test_the_check_sees_lazy_imports_and_ignores_type_checking(tmp_path):
    """The scan itself: an import inside a function counts; one under `if TYPE_CHECKING:` does not."""
    source = tmp_path / "probe.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engines import base\n"
                      "def f():\n    from .ui import app_ui\n")
    known = {"legend_demo.probe": source, "legend_demo.ui.app_ui": source, "legend_demo.engines.base": source}
    assert imports("legend_demo.probe", source, known) == {"legend_demo.ui.app_ui"}
    assert layer_of("legend_demo.ui.app_ui") > layer_of("legend_demo.method.dual_path") > layer_of("legend_demo.core.points")
