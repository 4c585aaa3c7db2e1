"""Layers only look down: data, then evaluation, then models, then run-level library modules,
then the console scripts; and no console-script module imports another."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "recsys"

LAYERS = {  # dotted prefix -> layer (the longest matching prefix wins)
    "recsys": 0,  # the package itself: errors, distributed, registry
    "recsys.data": 1,
    "recsys.evaluation": 2,
    "recsys.models": 3,
    "recsys.runs": 4,
    "recsys.config": 4,
    "recsys.cli": 4,
    "recsys.serving": 4,
    "recsys.serve": 4,
    "recsys.simulation": 4,
    "recsys.testing": 4,
    "recsys.callbacks": 4,
}
CONSOLE_LAYER = 5


def console_modules() -> set[str]:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return {target.split(":")[0] for target in scripts.values()}


def layer(module: str, consoles: set[str]) -> int:
    if module in consoles:
        return CONSOLE_LAYER
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The recsys modules ``path`` imports, anywhere in it (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "recsys"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "recsys":
                continue
            for alias in node.names:  # ``from recsys import callbacks``: a submodule
                sub = f"{node.module}.{alias.name}"
                is_module = (REPO / Path(*sub.split("."))).with_suffix(".py").is_file() or (
                    REPO / Path(*sub.split(".")) / "__init__.py"
                ).is_file()
                out.add(sub if is_module else node.module)
    return out


def violations(graph: dict[str, set[str]], consoles: set[str]) -> list[str]:
    out = []
    for module, imported in sorted(graph.items()):
        for other in sorted(imported):
            if other == module:
                continue
            if layer(other, consoles) > layer(module, consoles):
                out.append(f"{module} (layer {layer(module, consoles)}) imports {other} "
                           f"(layer {layer(other, consoles)})")  # fmt: skip
            elif other in consoles:
                out.append(f"{module} imports the console-script module {other}")
    return out


def test_no_module_imports_a_higher_layer_or_another_console_script():
    consoles = console_modules()
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    assert len(graph) > 50 and "recsys.models.base" in graph
    assert violations(graph, consoles) == []


def test_the_checker_finds_what_it_should():
    consoles = {"recsys.train", "recsys.sweep"}
    bad = {
        "recsys.data.x": {"recsys.models.base"},
        "recsys.models.y": {"recsys.runs.fit"},
        "recsys.sweep": {"recsys.train"},
        "recsys.runs.fit": {"recsys.data.x", "recsys.models.y"},  # fine: looks down
    }
    found = violations(bad, consoles)
    assert len(found) == 3
    assert "recsys.sweep imports the console-script module recsys.train" in found


def test_recsys_compare_loads_neither_torch_nor_lightning():
    code = "import sys, recsys.compare; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
