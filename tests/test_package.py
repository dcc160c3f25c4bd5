"""The lab is a package: `pip install .` gives the engine with its shipped assets and the `distill-lab` command,
every library the engine and the app import is declared, and the code passes the project's lint rules."""
import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMPORT_NAMES = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "ot": "pot"}  # import -> distribution
LOCAL = {"distill_core", "webui", "bench", *(p.stem for p in (ROOT / "tests").glob("*.py"))}  # and the tests' own


def declared(*groups: str) -> set[str]:
    deps = PYPROJECT["project"]["dependencies"] + [d for g in groups for d in PYPROJECT["project"]["optional-dependencies"][g]]
    return {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in deps}


def imported(*folders: str) -> set[str]:
    names = set()
    for folder in folders:
        for path in [ROOT / folder] if folder.endswith(".py") else (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
    third_party = names - set(sys.stdlib_module_names) - LOCAL
    return {IMPORT_NAMES.get(n, n).lower() for n in third_party}


def test_every_library_the_engine_and_the_app_import_is_a_declared_dependency():
    assert imported("distill_core", "webui", "app_pages", "app.py") - declared("ray") == set()  # ray: when asked for
    assert imported("tests", "bench") - declared("dev") == set()


@pytest.mark.timeout(300)
def test_the_wheel_installs_the_engine_its_assets_and_the_command(tmp_path):
    pytest.importorskip("setuptools")  # the build backend, here without downloading it
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    left = [p for p in (ROOT / "build", ROOT / "backdoor_distillation_lab.egg-info") if not p.exists()]
    try:
        subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                       check=True, capture_output=True)
    finally:  # setuptools builds inside the checkout: leave it as it was
        for p in left:
            shutil.rmtree(p, ignore_errors=True)
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), *map(str, tmp_path.glob("*.whl"))],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    help_ = run(str(site / "bin" / "distill-lab"), "--help")
    assert help_.returncode == 0 and "pretrain" in help_.stdout and "pipeline" in help_.stdout, help_.stderr
    found = run("-c", "import distill_core.presets as p; print(p.__file__, p.DEMO_ENCODER.is_file(), "
                      "any(p.STORIES.glob('*/summary.json')))")
    assert found.stdout.split() == [str(site / "distill_core" / "presets.py"), "True", "True"], found.stderr


def test_the_code_passes_the_projects_lint_rules():
    pytest.importorskip("ruff")
    found = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                           cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout[-3000:]
