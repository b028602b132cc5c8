"""The installed package carries its grammar and templates and every subpackage."""

import tomllib
from pathlib import Path

from storylang.resources import grammar_path, templates_dir

ROOT = Path(__file__).resolve().parent.parent


def test_grammar_and_templates_are_found():
    assert grammar_path().is_file()
    assert templates_dir().is_dir()


def test_every_subpackage_is_listed_for_installation():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "storylang").rglob("__init__.py")}
    assert found <= listed
