"""`storyc board`: a printable storyboard of every shot, as PDF and as HTML."""

import re
import shutil

from click.testing import CliRunner
from pypdf import PdfReader

from storylang.cli import main

from conftest import EXAMPLES


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_22_shot_example_has_a_panel_for_every_shot_with_its_words(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    script = tmp_path / "ex" / "harbour.story"
    result = run("board", script, "-o", tmp_path / "board.pdf")
    assert result.exit_code == 0, result.output
    assert "22 panels, 5 scenes" in result.output
    reader = PdfReader(tmp_path / "board.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert sorted(int(n) for n in re.findall(r"SHOT (\d+)", text)) == list(range(1, 23))
    for words in ("EXT. HARBOUR - DUSK", "INT. FERRY CABIN - NIGHT", "camera: pan right slow",
                  "the harbour settles for the night", "(narration) The last ferry left at seven.",
                  "TOMAS: Room for one more?", "5.0 s · extreme wide", "medium on IDA and TOMAS"):
        assert words in text, words
    # a picture drawn per panel (two shots that look alike share one image in the file)
    assert sum(len(re.findall(rb" Do\b", page.get_contents().get_data())) for page in reader.pages) == 22
    assert reader.metadata.title == "Last Ferry: storyboard" and reader.metadata.creator.startswith("storyc ")
    # no film was encoded for it: the board needs the pictures and the edit list only
    assert not (tmp_path / "ex" / "build" / "harbour" / "harbour.mp4").exists()


def test_the_html_board_is_one_page_with_its_pictures_inlined(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    result = run("board", tmp_path / "ex" / "lighthouse.story", "-o", tmp_path / "board.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "board.html").read_text()
    assert html.count('class="panel"') == 3 and html.count("data:image/jpeg;base64,") == 3
    assert "MARA (quietly):</b> Not tonight." in html and "<h2>INT. LAMP ROOM - NIGHT</h2>" in html
    assert "src=\"file:" not in html and str(tmp_path) not in html


def test_a_board_is_pdf_or_html(tmp_path):
    result = run("board", EXAMPLES / "lighthouse.story", "-o", tmp_path / "board.png")
    assert result.exit_code == 2 and "a board is written as .pdf or .html" in result.output
