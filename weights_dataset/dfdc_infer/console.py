"""What every command of the project shares at the terminal, so all of them log and fail alike.

A problem with the user's input (a missing path, a bad checkpoint, a malformed CSV, an invalid
setting) ends with one line ``error: ...`` on stderr and exit code 2, never a traceback; progress
is logged as ``HH:MM:SS LEVEL message``. Standard library only: light enough for any ``main``.
"""

from __future__ import annotations

import logging
import sys

EXIT_USAGE = 2
USER_ERRORS = (FileNotFoundError, ValueError)
"""The user's mistakes: a missing path, or a bad value (``CheckpointError``, ``SubmissionError`` and
``DataError`` are ValueErrors)."""


def setup_logging(level: int = logging.INFO, prefix: str = "") -> None:
    """Log records at ``level`` and above as ``HH:MM:SS LEVEL PREFIXmessage``."""
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {prefix}%(message)s", datefmt="%H:%M:%S")


def fail(error: BaseException | str, code: int = EXIT_USAGE) -> int:
    """Print ``error: ERROR`` on stderr and give the exit code for ``main`` to return."""
    print(f"error: {error}", file=sys.stderr)
    return code
