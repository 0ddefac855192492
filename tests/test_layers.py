"""The house as its imports draw it: layers run one way and no two modules import each other.

Every import in ``src/stableresnet`` (at the top of a module or inside a function) is read with
``ast``; relative imports are resolved, and ``from . import name`` counts as importing the
submodule ``name`` where there is one. A new import that breaks a rule fails here, naming both ends.
"""

import ast
from pathlib import Path

import stableresnet

PACKAGE = Path(stableresnet.__file__).parent
CORE = "core"  # every module outside data/, viz/, experiments/ and cli/, the package itself aside
# Layer of a module -> layers it must not import. stats and errors are core modules like the others.
FORBIDDEN = {
    CORE: {"viz", "experiments", "cli"},
    "data": {"viz", "experiments", "cli"},
    "viz": {"experiments", "cli"},
    "experiments": {"cli"},
    "cli": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package's __init__: re-exports only
    return parts[1] if parts[1] in FORBIDDEN else CORE


def imports(module: str) -> set[str]:
    """The package modules ``module`` imports, anywhere in its file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # a name inside a module: the module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_the_graph_is_read_from_every_module():
    assert {"stableresnet.spec", "stableresnet.experiments.runner", "stableresnet.viz.sweep",
            "stableresnet.cli.common"} <= set(GRAPH)
    assert "stableresnet.experiments.runner" in GRAPH["stableresnet.experiments.sweep"]
    assert "stableresnet.errors" in GRAPH["stableresnet.model"]


def test_layers_run_one_way():
    wrong = [f"{module} ({layer(module)}) imports {imported} ({layer(imported)})"
             for module, imported_modules in GRAPH.items() for imported in sorted(imported_modules)
             if layer(module) is not None and layer(imported) in FORBIDDEN[layer(module)]]
    assert not wrong, "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return stack[stack.index(imported):] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    return next((cycle for module in sorted(graph) if module not in state and (cycle := visit(module))), None)


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_through_others():
    """No cycle among the package's modules, the package ``__init__`` included: a module may take
    ``__version__`` from it only if the ``__init__`` does not reach that module."""
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
