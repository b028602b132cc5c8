"""Running `storyc` as a user runs it, for the benchmarks: a new process per command, start-up
included, with storylang's modules byte-compiled as `pip install` leaves them (where
PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile its source anew in
every process, about 0.06 s here, which no installed copy does)."""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from pathlib import Path

import storylang

STORYC = [sys.executable, "-m", "storylang.cli"]


def byte_compiled() -> None:
    if not compileall.compile_dir(Path(storylang.__file__).parent, quiet=1):
        raise SystemExit("could not byte-compile storylang")


def storyc(*args: str, cwd: Path) -> float:
    """Seconds `storyc ARGS` takes in `cwd`; exits with its message if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run([*STORYC, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"storyc {' '.join(args)} failed:\n{proc.stderr}")
    return time.perf_counter() - t0
