"""The size limits that keep each module to one concept (docs/ARCHITECTURE.md).

No file under ``src/tc3d`` passes 400 lines and no function passes 60, except the argparse
flag tables of the command line (``add_*`` / ``*_flags`` functions in ``tc3d.cli``), which are
long lists by nature and read best in one piece.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tc3d"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _is_flag_table(path: Path, name: str) -> bool:
    return path.parent.name == "cli" and (name.startswith("add_") or name.endswith("_flags"))


def long_functions(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and not _is_flag_table(path, node.name):
                    found.append(f"{path.relative_to(root)}:{node.name} ({lines} lines)")
    return found


def test_no_source_file_over_400_lines():
    long = [
        f"{p.relative_to(SRC)} ({n} lines)"
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    ]
    assert not long, "split these files: " + ", ".join(long)


def test_no_function_over_60_lines():
    found = long_functions()
    assert not found, "split these functions: " + ", ".join(found)


def test_the_function_check_sees_a_long_function(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "flags.py").write_text(f"def add_things(p):\n{body}")
    assert long_functions(tmp_path) == [f"long.py:long ({MAX_FUNCTION_LINES + 1} lines)"]
