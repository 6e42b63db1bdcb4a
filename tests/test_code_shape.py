"""No function or method is over ``MAX_FUNCTION_LINES`` lines: a longer one is split into named steps."""

from __future__ import annotations

import ast

from test_imports import REPO, source_files

MAX_FUNCTION_LINES = 80


def test_no_function_is_over_80_lines() -> None:
    too_long = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {lines} lines")
    assert not too_long, "\n".join(too_long)
