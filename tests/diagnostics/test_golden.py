"""A catalogue of writers' mistakes and the exact messages they get.

Set STORYLANG_UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate change.
"""

import os
from pathlib import Path

import pytest

from storylang.check import check_film
from storylang.diagnostics import render_text, sort_key

CASES = sorted((Path(__file__).parent / "cases").glob("*.story"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_diagnostics(case, monkeypatch):
    monkeypatch.chdir(case.parent)
    checked = check_film(Path(case.name), case.name)
    diags, sources = checked.diagnostics, checked.sources
    assert diags, "every case in the catalogue is a mistake"
    text = render_text(sorted(diags, key=sort_key), sources) + "\n"
    golden = case.with_suffix(".txt")
    if os.environ.get("STORYLANG_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
