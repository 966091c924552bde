"""course_lib is layered: every import (lazy ones included) goes to a lower layer, and the
README's layer list says the same (issue 13, part 4)."""

from __future__ import annotations

import ast
import re

from course_lib import config

LAYERS: list[tuple[str, ...]] = [
    ("config", "atomic", "stats", "entropy_coding"),
    ("memo",),
    ("compat",),
    ("data",),
    ("measure", "models"),
    ("training",),
    ("tflite",),
    ("tflm",),
    ("system",),
    ("report",),
    ("variants",),
    (
        "pruning",
        "quantization",
        "low_bit",
        "intarith",
        "structure",
        "distillation",
        "mixed_precision",
        "summary",
        "deploy",
        "learned_compression",
    ),
    ("deep_compression", "float16", "guide"),
    ("combined",),
    ("plots",),
    ("exercises.core",),
    ("exercises.*",),
]
"""The helpers a learner imports, lowest layer first."""

TOOLS = ("runner", "readme", "bench", "quiet", "mutation", "book")
"""The course's own tooling: on top of every layer; no helper imports it."""

PACKAGE = config.repo_root() / "course_lib"


def module_name(path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def layer_of(name: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if name in layer or (name.startswith("exercises.") and "exercises.*" in layer):
            return i
    return None


def imports_of(path) -> set[str]:
    """course_lib modules a file imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "course_lib":
                names = [f"course_lib.{a.name}" for a in node.names]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name.startswith("course_lib."):
                mod = name.removeprefix("course_lib.")
                if mod == "exercises":
                    mod = "exercises.__init__"
                found.add(mod)
    return found


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_a_layer_or_is_a_tool():
    unplaced = [
        module_name(p)
        for p in modules()
        if layer_of(module_name(p)) is None and module_name(p) not in TOOLS
    ]
    assert not unplaced, f"add {unplaced} to LAYERS or TOOLS here and to the README's list"


def test_every_import_goes_to_a_lower_layer():
    wrong = []
    for path in modules():
        name = module_name(path)
        if name in TOOLS:
            continue
        own = layer_of(name)
        for target in imports_of(path):
            if target in TOOLS:
                wrong.append(f"{name} imports the tool {target}")
                continue
            if target == "exercises.__init__":
                wrong.append(f"{name} imports the exercises package")
                continue
            theirs = layer_of(target)
            if theirs is None or theirs >= own:  # type: ignore[operator]
                wrong.append(f"{name} (layer {own}) imports {target} (layer {theirs})")
    assert not wrong, "; ".join(wrong)


def test_the_check_finds_a_lazy_upward_import(tmp_path):
    fake = tmp_path / "m.py"
    fake.write_text("def f():\n    from course_lib.plots import x\n    import course_lib.tflite\n")
    assert imports_of(fake) == {"plots", "tflite"}


def test_the_readme_lists_the_layers_in_order():
    text = (config.repo_root() / "README.md").read_text()
    match = re.search(r"`course_lib` is layered(.*?)no helper imports it", text, re.DOTALL)
    assert match, "README.md lost its paragraph on course_lib's layers"
    named = re.findall(r"`([a-z0-9_.]+)`", match.group(1))
    expected = [m for layer in LAYERS for m in layer if m != "exercises.*"] + list(TOOLS)
    assert [m for m in named if m in expected] == expected
