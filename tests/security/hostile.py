"""What every hostile-input test asserts: one line with a place, no traceback, nothing outside."""

from __future__ import annotations

import os
import re
from pathlib import Path

from click.testing import CliRunner

from storylang.cli import main

PLACE = re.compile(r"^[^\s:]+:\d+:\d+: error: ", re.M)


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and modification time (links not followed)."""
    out = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            out[os.path.relpath(p, folder)] = (st.st_size, st.st_mtime_ns)
    return out


def run(*args, cwd: Path | None = None):
    """storyc in-process; the result's output holds stdout and stderr."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(old)


def no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
