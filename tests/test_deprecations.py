"""tc3d stands on maintained PyTorch APIs: nothing in ``src/tc3d`` uses what PyTorch has
deprecated for removal (``torch.ao.quantization``, its FX graph mode ``quantize_fx``,
``torch.jit.script``), and the test run fails on a deprecation that torch raises on tc3d's
behalf (``filterwarnings`` in pyproject.toml).

The scan reads the syntax tree, not the text: a docstring may name the old APIs (a model file
from the old int8 flow is refused, say), code may not import, call or look them up by name.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest
import torch

SRC = Path(__file__).resolve().parents[1] / "src" / "tc3d"
# dotted names that may not appear as an import, an attribute chain or a module-name string
DEPRECATED = re.compile(r"torch\.ao\.quantization|torch\.jit\.script|quantize_fx")


def _dotted(node: ast.AST) -> str | None:
    """``torch.jit.script`` for that attribute chain, None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _names(tree: ast.AST):
    """``(line, name)`` for every dotted name the code uses: imports (``from a import b`` as
    ``a.b``), attribute chains, and strings that are a dotted name (``import_module("...")``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute):
            names = [_dotted(node)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if re.fullmatch(r"[A-Za-z_][\w.]*", node.value) else []
        else:
            continue
        yield from ((node.lineno, name) for name in names if name)


def deprecated_uses(root: Path = SRC) -> list[str]:
    """``file:line: name``, the longest deprecated name on each line."""
    found: dict[tuple[str, int], str] = {}
    for path in sorted(root.rglob("*.py")):
        for line, name in _names(ast.parse(path.read_text(), str(path))):
            key = (str(path.relative_to(root)), line)
            if DEPRECATED.search(name) and len(name) > len(found.get(key, "")):
                found[key] = name
    return [f"{file}:{line}: {name}" for (file, line), name in sorted(found.items())]


def test_src_uses_no_deprecated_torch_api():
    found = deprecated_uses()
    assert not found, "deprecated PyTorch APIs in src/tc3d: " + ", ".join(found)


def test_the_scan_sees_every_way_of_reaching_them(tmp_path):
    (tmp_path / "a.py").write_text(
        '"""Models from the old torch.ao.quantization flow are refused."""\n'
        "import torch\n"
        "import torch.ao.quantization as q\n"
        "from torch.ao.quantization.quantize_fx import prepare_fx\n"
        "from torch.ao import quantization\n"
        "f = torch.jit.script\n"
        "m = importlib.import_module('torch.ao.quantization')\n"
        "ok = torch.jit.trace, torch.export.export, 'torch.ao.quantization is gone.'\n"
    )
    assert deprecated_uses(tmp_path) == [
        "a.py:3: torch.ao.quantization",
        "a.py:4: torch.ao.quantization.quantize_fx.prepare_fx",
        "a.py:5: torch.ao.quantization",
        "a.py:6: torch.jit.script",
        "a.py:7: torch.ao.quantization",
    ]


def test_torch_deprecations_on_tc3d_behalf_are_errors_in_the_test_run():
    # torch's default stacklevel: attributed to torch.jit._trace (a DeprecationWarning in torch
    # 2.13, a FutureWarning from 2.14)
    with pytest.raises((DeprecationWarning, FutureWarning), match="torch.jit.trace"):
        torch.jit.trace(torch.nn.Identity(), (torch.zeros(1),))
    # stacklevel=2 (typing_extensions.deprecated and the like): attributed to the tc3d caller
    for category, module in [(DeprecationWarning, "tc3d.infer.export"), (FutureWarning, "tc3d")]:
        with pytest.raises(category):
            warnings.warn_explicit("old", category, "export.py", 1, module=module)
    with pytest.raises(FutureWarning):
        warnings.warn_explicit("old", FutureWarning, "x.py", 1, module="torch.export")


def test_other_libraries_deprecations_stay_warnings():
    with warnings.catch_warnings(record=True) as caught:
        for module in ("torchvision.io", "torchao", "numpy", "tests.test_x", "mytc3d"):
            warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module=module)
    assert len(caught) == 5
