"""A clean build, done twice in two places, gives byte-identical films and edit lists."""

import shutil
from pathlib import Path

import pytest

from storylang.build import BuildOptions, build

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name, preview", [("lighthouse", False), ("everything", True)])
def test_two_clean_builds_are_byte_identical(tmp_path, name, preview):
    outputs = []
    for copy in ("a", "b"):
        shutil.copytree(EXAMPLES, tmp_path / copy, ignore=shutil.ignore_patterns("build"))
        report = build(tmp_path / copy / f"{name}.story", BuildOptions(jobs=2, preview=preview))
        outputs.append((report.output.read_bytes(), report.timeline.read_bytes()))
    assert outputs[0][1] == outputs[1][1]
    assert outputs[0][0] == outputs[1][0]
