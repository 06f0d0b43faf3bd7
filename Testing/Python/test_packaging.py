"""Packaging: Slicer's CMake macros install only the files they list, so check the lists.

A .py or resource missing from a CMakeLists.txt is silently absent from the installed
extension; these tests make that a CI failure instead.
"""

import ast
import re
from pathlib import Path
from xml.dom import minidom

ROOT = Path(__file__).resolve().parents[2]


def _cmake_list(cmake_file: Path, variable: str):
    text = cmake_file.read_text()
    match = re.search(r"set\(\s*%s\s+(.*?)\)" % variable, text, re.S)
    assert match, f"{variable} not set in {cmake_file}"
    entries = [e for e in match.group(1).split() if not e.startswith("#")]
    return {e.replace("${MODULE_NAME}", "MicroCTLike") for e in entries}


def test_every_library_file_is_listed_for_installation():
    lib = ROOT / "MicroCTLikeLib"
    listed = _cmake_list(lib / "CMakeLists.txt", "MODULE_PYTHON_SCRIPTS")
    present = {p.relative_to(lib).with_suffix("").as_posix() for p in lib.rglob("*.py")}
    assert sorted(present - listed) == [], "add these to MicroCTLikeLib/CMakeLists.txt"
    assert sorted(listed - present) == [], "listed but missing"


def test_every_module_resource_is_listed_for_installation():
    module = ROOT / "MicroCTLike"
    listed = _cmake_list(module / "CMakeLists.txt", "MODULE_PYTHON_RESOURCES")
    present = {p.relative_to(module).as_posix() for p in (module / "Resources").rglob("*") if p.is_file()}
    assert sorted(present - listed) == [], "add these to MicroCTLike/CMakeLists.txt"
    assert sorted(listed - present) == [], "listed but missing"


def test_top_level_cmake_builds_an_extension_with_both_folders():
    text = (ROOT / "CMakeLists.txt").read_text()
    for needle in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})", "add_subdirectory(MicroCTLikeLib)",
                   "add_subdirectory(MicroCTLike)", "Slicer_EXTENSION_GENERATE_CONFIG", "Slicer_EXTENSION_CPACK",
                   'set(EXTENSION_DEPENDS "PyTorch")'):
        assert needle in text
    assert "WITH_SUBDIR" in (ROOT / "MicroCTLikeLib" / "CMakeLists.txt").read_text()


def test_module_file_follows_the_scripted_module_template():
    tree = ast.parse((ROOT / "MicroCTLike" / "MicroCTLike.py").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    expected_bases = {
        "MicroCTLike": "ScriptedLoadableModule",
        "MicroCTLikeWidget": "ScriptedLoadableModuleWidget",
        "MicroCTLikeLogic": "ScriptedLoadableModuleLogic",
        "MicroCTLikeTest": "ScriptedLoadableModuleTest",
    }
    for name, base in expected_bases.items():
        assert name in classes, name
        assert base in [getattr(b, "id", None) for b in classes[name].bases]
    assert "MicroCTLikeParameterNode" in classes
    decorators = [getattr(d, "id", None) for d in classes["MicroCTLikeParameterNode"].decorator_list]
    assert decorators == ["parameterNodeWrapper"]
    # Nothing from MicroCTLikeLib is imported at module scope (keeps Slicer start-up fast, torch lazy).
    top_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(getattr(n, "module", "") and n.module.startswith("MicroCTLikeLib") for n in top_imports)


def test_ui_parameter_names_match_the_parameter_node():
    module_source = (ROOT / "MicroCTLike" / "MicroCTLike.py").read_text()
    tree = ast.parse(module_source)
    node_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MicroCTLikeParameterNode")
    fields = {stmt.target.id for stmt in node_class.body if isinstance(stmt, ast.AnnAssign)}
    ui = minidom.parse(str(ROOT / "MicroCTLike" / "Resources" / "UI" / "MicroCTLike.ui"))
    bound = set()
    widget_names = set()
    for widget in ui.getElementsByTagName("widget"):
        widget_names.add(widget.getAttribute("name"))
        for prop in widget.getElementsByTagName("property"):
            if prop.getAttribute("name") == "SlicerParameterName" and prop.parentNode is widget:
                bound.add(prop.getElementsByTagName("string")[0].firstChild.data)
    assert bound <= fields, f"UI binds unknown parameters {bound - fields}"
    assert ui.documentElement.getElementsByTagName("widget")[0].getAttribute("class") == "qMRMLWidget"
    # every self.ui.<name> the widget uses exists in the .ui file
    used = set(re.findall(r"self\.ui\.(\w+)", module_source))
    assert used <= widget_names, f"missing widgets {used - widget_names}"
