"""The engine's layers import one way: down. Every import counts, also one inside a function, so a circle cannot
hide behind a late import. A new module belongs to a layer here; a test failure names the offending import.
The rest of the house points down too: app.py and the pages use webui and the engine, webui uses the engine, the
benchmarks use the engine alone, and nothing imports a page."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

ENGINE = ROOT / "distill_core"
LAYERS = [  # lowest first: a module imports from its own layer or below, never above
    {"files", "events", "presets", "cpu_kernels", "choices"},
    {"data", "device", "models"},
    {"config", "training", "ui"},
    {"runs"},
    {"evaluate"},
    {"ssl", "attacks", "inspect"},
    {"distill"},
    {"pipeline"},
    {"sweep"},
    {"tasks"},
    {"cli", "demo_story", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
APP_ONLY = ("streamlit", "webui", "app_pages", "bench")  # the engine runs without the app and the benchmarks
HOUSE = {  # outside the engine: the folder (or root file) and which of the project's packages and streamlit it imports
    "app": {"distill_core", "webui", "streamlit"},  # st.navigation names the pages by file, never imports them
    "app_pages": {"distill_core", "webui", "streamlit"},  # never another page
    "webui": {"distill_core", "webui", "streamlit"},
    "bench": {"distill_core", "bench"},  # it drives the app through `streamlit run` in a subprocess, never imports it
}
CHECKED = set(HOUSE) | {"distill_core", "streamlit", "tests"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ENGINE.rglob("*.py")}


def imported(source: str, package: str) -> set[str]:
    """Every module a source in `package` imports, anywhere in its code, as absolute names (a package's
    submodule when a `from PACKAGE import name` names one)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            found.update(subs if len(subs) == len(node.names) else {base, *subs})
    return found


def imports(module: str) -> set[str]:
    path = MODULES[module]
    return imported(path.read_text(), module if path.name == "__init__.py" else module.rpartition(".")[0])


def internal(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


GRAPH = {m: {t for t in map(internal, imports(m)) if t and t != m} for m in MODULES}
HOUSE_MODULES = {module_name(p): p for p in [ROOT / "app.py", *(p for d in HOUSE for p in (ROOT / d).glob("**/*.py"))]}


def unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_engine_module_has_a_layer():
    assert {unit(m) for m in MODULES if unit(m)} - {"assets"} <= set(LAYER), "add the new unit to LAYERS"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_engine_imports_downward_only_and_never_the_app(module):
    app = sorted(name for name in imports(module) if name.split(".")[0] in APP_ONLY)
    assert not app, f"{module} imports {app}: the engine must run without the app"
    if not unit(module):
        return
    upward = sorted(t for t in GRAPH[module] if unit(t) and LAYER[unit(t)] > LAYER[unit(module)])
    assert not upward, f"{module} (layer {LAYER[unit(module)]}) imports {upward} from a higher layer"


def outside(source: str, package: str, part: str) -> list[str]:
    """What a source in `package`, in the house's `part`, imports that the part may not."""
    return sorted(n for n in imported(source, package) if n.split(".")[0] in CHECKED - HOUSE[part])


@pytest.mark.parametrize("module", sorted(HOUSE_MODULES))
def test_the_app_and_the_benchmarks_import_downward_only(module):
    path, part = HOUSE_MODULES[module], module.split(".")[0]
    wrong = outside(path.read_text(), module if path.name == "__init__.py" else module.rpartition(".")[0], part)
    assert not wrong, f"{module} imports {wrong}: {part} may import only {sorted(HOUSE[part])} of the house"


def test_no_import_circles():
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_checker_sees_a_forbidden_import():
    """The rules catch what they are for: a late import from a higher layer, and the app."""
    late = "def f():\n    from ..tasks import run_task\n    import streamlit\n"
    found = {internal(name) or name for name in imported(late, "distill_core.data")}
    assert found == {"distill_core.tasks", "streamlit"} and LAYER["tasks"] > LAYER["data"]
    assert outside("import streamlit\nfrom webui.jobs import m\nfrom app_pages.attack import x\n", "app_pages",
                   "app_pages") == ["app_pages.attack"]
    assert outside("def f():\n    import streamlit\nfrom . import timing\n", "bench", "bench") == ["streamlit"]
