"""The seams of docs/architecture.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVING = ["autocomplete.holder"] + [
    f"autocomplete.{name}"
    for name in ("server", "websocket", "service", "protocol", "completer", "candidates", "generators")
]


def module_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in ("autocomplete", "indexer", "sessions", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
            graph[name] = {
                m for m in found if m.split(".")[0] in ("autocomplete", "indexer", "sessions", "bench")
            }
    return graph


def test_indexer_imports_nothing_online_and_sessions_nothing_of_ours():
    for module, imports in module_imports().items():
        if module.startswith("indexer"):
            assert all(m.startswith("indexer") for m in imports), (module, imports)
        if module.startswith("sessions"):
            assert all(m.startswith("sessions") for m in imports), (module, imports)


def test_serving_imports_no_measurement_code():
    graph = module_imports()
    for module in SERVING:
        bad = {m for m in graph[module] if m.startswith(("autocomplete.evaluation", "bench"))}
        assert not bad, (module, bad)


def test_no_module_imports_itself_through_others():
    graph = module_imports()

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m not in seen and m in graph:
                seen.add(m)
                todo.extend(graph[m])
        return seen

    cycles = sorted(m for m in graph if m in reaches(m))
    assert not cycles
