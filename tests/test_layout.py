"""The package layout keeps one dependency direction (docs/architecture.md): core at the bottom, the
pipeline on it, engines and telephony above, the server over everything, and no import circles, not even
through imports inside functions. Imports under ``if TYPE_CHECKING:`` are for annotations only."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "babelfish"
BELOW = {  # what each part may import (besides itself)
    "core": set(),
    "config": {"core"},
    "transcripts": {"core"},
    "pipeline": {"config", "core"},
    "telephony": {"config", "core", "pipeline"},
    "engines": {"config", "core", "pipeline", "telephony"},
    "directory": {"config", "core", "transcripts"},
    "server": {"config", "core", "pipeline", "engines", "telephony", "directory", "transcripts"},
    "devtools": {"config", "core", "pipeline", "engines", "telephony", "directory", "transcripts", "server"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def runtime_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The babelfish modules ``name`` imports when it runs (anywhere in it, functions included)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(sub) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for sub in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names)

    def resolve(target: str) -> str:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target

    return {m for m in map(resolve, targets) if m.startswith("babelfish") and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: runtime_imports(name, path, known) for name, path in known.items()}


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_each_part_imports_only_the_parts_below_it() -> None:
    wrong = defaultdict(set)
    for module, imports in graph().items():
        if part(module) in BELOW:
            for target in imports:
                if part(target) != part(module) and part(target) not in BELOW[part(module)]:
                    wrong[module].add(target)
    assert not wrong, dict(wrong)


def test_no_module_imports_itself_round_a_circle() -> None:
    imports = graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(imports.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(imports):
        if module not in state:
            visit(module, [module])
    assert not circles, circles
    assert len(imports) > 80  # the walk saw the package
