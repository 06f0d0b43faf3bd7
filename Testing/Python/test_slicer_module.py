"""The Slicer module as Slicer 5.10 and 5.12 load it: Slicer's own ScriptedLoadableModule and
parameterNodeWrapper code run the panel's setup and the self-test (../shared/slicer-conformance),
plain and with the packages a fresh Slicer lacks hidden; plus the module's static contracts."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "MicroCTLike" / "MicroCTLike.py"
CHECKER = ROOT.parent / "shared" / "slicer-conformance" / "check_module.py"
HIDDEN = "numba,edt,skimage,cv2,tqdm,yaml"


def _check(*extra):
    if not CHECKER.is_file():
        pytest.skip(f"the Slicer conformance check is not here ({CHECKER}): it comes with the shared folder beside "
                    "the repository")
    pytest.importorskip("slicer", reason="the conformance check needs the slicer-core wheel")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    result = subprocess.run([sys.executable, str(CHECKER), str(MODULE), "--self-test", *extra], cwd=ROOT, env=env,
                            capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=2400)
    output = result.stdout + result.stderr
    return result.returncode, output


def _assert_all_pass(code, output):
    steps = re.findall(r"^  (PASS|FAIL) (\w+)", output, re.M)
    assert code == 0 and ("FAIL" not in {s for s, _ in steps}), output[-6000:]
    for version in ("5.10", "5.12"):
        assert f"Slicer {version}:" in output
    names = [name for _, name in steps]
    for step in ("import", "metadata", "sampledata", "ui", "widget", "selftest"):
        assert names.count(step) == 2, (step, output[-3000:])
    return names


def test_module_passes_the_conformance_check_with_its_self_test_on_5_10_and_5_12():
    code, output = _check()
    _assert_all_pass(code, output)
    assert len(re.findall(r"^  PASS selftest: \d+ self-test\(s\)$", output, re.M)) == 2  # none stopped early
    assert output.count("delayDisplay: Test passed") == 2  # the whole flow ran in both versions


def test_module_asks_for_every_package_a_fresh_slicer_lacks_before_using_it():
    code, output = _check("--hide", HIDDEN)
    names = _assert_all_pass(code, output)
    assert names.count("dependencies") == 2
    assert "slicer.packaging.pip_ensure" in output and "slicer.util.pip_install" in output  # 5.12 and 5.10 paths


def test_requirements_never_touch_slicer_own_packages_and_name_importable_modules():
    lines = [line.split("#")[0].strip() for line in (ROOT / "Resources" / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line]
    names = [re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements]
    assert not {"numpy", "simpleitk", "scipy", "torch", "vtk"} & set(names)
    assert {"edt", "numba", "psutil"} <= set(names)
    import importlib.util

    for name in names:  # the import name the module probes is the distribution name
        assert importlib.util.find_spec(name.replace("-", "_")) is not None, name
    # the library's dependencies include them, so a pip install of the library matches the module
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in names:
        assert f'"{name}>=' in pyproject, name


def test_panel_choices_match_the_library():
    from MicroCTLikeLib.morphometry import POLICIES
    from MicroCTLikeLib.morphometry.thresholds import METHODS

    tree = ast.parse(MODULE.read_text())
    constants = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                 and isinstance(node.value, ast.List)}
    assert constants["THRESHOLD_METHODS"] == list(METHODS)
    assert constants["TB_SP_POLICIES"] == list(POLICIES)
    assert constants["DEVICES"] == ["auto", "cuda", "cpu"]


def test_extension_hygiene():
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "Resources/Icons/MicroCTLike.png" in cmake and (ROOT / "Resources" / "Icons" / "MicroCTLike.png").is_file()
    assert "demo_figure" not in cmake  # a report figure is not a Slicer screenshot
    contributors = re.search(r'EXTENSION_CONTRIBUTORS "([^"]*)"', cmake).group(1)
    assert "MicroCTLike project" in contributors
    module_cmake = (ROOT / "MicroCTLike" / "CMakeLists.txt").read_text()
    assert "../Resources/${resource}" in module_cmake and "requirements.txt" in module_cmake
