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


def test_the_characters_sheets_come_first_rendered_or_not_yet(tmp_path):
    from PIL import Image

    script = tmp_path / "film.story"
    script.write_text('character MARA\n  look "silver braid, yellow raincoat"\n  sheet\n'
                      'character TOM\n  look "grey moustache"\n  sheet "front view"\n'
                      'character IDA\n  look "red scarf"\n'
                      'EXT. HARBOUR - DAY\n  shot 1 close on MARA 2s\n  shot 2 wide on TOM and IDA 2s\n')
    sheets = tmp_path / "build" / "film" / "sheets"
    sheets.mkdir(parents=True)
    Image.new("RGB", (64, 96), (200, 30, 30)).save(sheets / "MARA.png")  # as storyc sheets leaves it
    result = run("board", script, "-o", tmp_path / "board.pdf")
    assert result.exit_code == 0, result.output
    assert "2 panels, 1 scene, 2 character sheets, 2 pages" in result.output
    reader = PdfReader(tmp_path / "board.pdf")
    first = reader.pages[0].extract_text()
    assert "Characters" in first and "SHOT" not in first  # the faces have a page of their own
    assert "look: silver braid, yellow raincoat" in first and "sheet: front view" in first
    assert "IDA" not in first  # no sheet, no reference: nothing to show
    assert first.count("not rendered yet: storyc sheets") == 1  # TOM's; MARA's is drawn
    assert len(reader.pages[0].images) == 1
    result = run("board", script, "-o", tmp_path / "board.html")
    html = (tmp_path / "board.html").read_text()
    assert html.index('id="character-MARA"') < html.index('id="shot-1"')
    assert html.count("data:image/jpeg;base64,") == 3  # MARA's sheet and two shots
