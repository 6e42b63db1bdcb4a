"""Imports go one way, so each package can be read, tested and packed without the ones above it.

``LAYERS``: a package imports only the packages before it (and itself); the product,
``build_submission.py`` and ``kernel/*.py``, imports only ``dfdc_infer``. Every import counts,
inside functions and under ``TYPE_CHECKING`` too.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = REPO / "weights_dataset"
LAYERS = ("dfdc_infer", "dfdc_fakes", "dfdc_sample", "dfdc_train", "dfdc_tools")
PRODUCT_FILES = [REPO / "build_submission.py", *sorted((REPO / "kernel").glob("*.py"))]


def package_files() -> list[Path]:
    """Every .py file of the packages under ``weights_dataset/``."""
    return sorted(PACKAGES.glob("*/**/*.py"))


def source_files() -> list[Path]:
    """Every .py file of the packages and of the product."""
    return package_files() + PRODUCT_FILES


def project_imports(source: str, name: str) -> list[tuple[str, str]]:
    """``(package, "NAME:LINE `statement`")`` for each absolute import of a project package in ``source``,
    wherever it sits, in line order (a relative import stays inside its own package)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [(node.lineno, package, f"{name}:{node.lineno} `{ast.unparse(node)}`")
                  for package in (module.split(".")[0] for module in modules) if package in LAYERS]
    return [(package, where) for _, package, where in sorted(found)]


def wrong_way(path: Path, allowed: tuple[str, ...]) -> list[str]:
    """Each import in ``path`` of a project package outside ``allowed``, named with its file, line and statement."""
    imports = project_imports(path.read_text(), str(path.relative_to(REPO)))
    return [f"{where} imports {package}; it may import only {', '.join(allowed)}" for package, where in imports if package not in allowed]


def test_every_package_imports_only_the_packages_before_it() -> None:
    packages = sorted({path.relative_to(PACKAGES).parts[0] for path in package_files()})
    assert packages == sorted(LAYERS), "a new package needs its place in LAYERS"
    problems = []
    for path in package_files():
        layer = LAYERS.index(path.relative_to(PACKAGES).parts[0])
        problems += wrong_way(path, LAYERS[: layer + 1])
    assert not problems, "\n".join(problems)


def test_the_product_imports_only_the_inference_package() -> None:
    assert REPO / "kernel" / "dfdc_kernel.py" in PRODUCT_FILES
    problems = [problem for path in PRODUCT_FILES for problem in wrong_way(path, ("dfdc_infer",))]
    assert not problems, "\n".join(problems)


def test_imports_in_functions_and_under_type_checking_count() -> None:
    source = ("from typing import TYPE_CHECKING\nfrom . import sibling\nimport dfdc_infer.models\n"
              "if TYPE_CHECKING:\n    from dfdc_train.config import TrainConfig\n"
              "def main():\n    import numpy, dfdc_tools.dry_run\n")
    assert project_imports(source, "probe.py") == [
        ("dfdc_infer", "probe.py:3 `import dfdc_infer.models`"),
        ("dfdc_train", "probe.py:5 `from dfdc_train.config import TrainConfig`"),
        ("dfdc_tools", "probe.py:7 `import numpy, dfdc_tools.dry_run`"),
    ]
