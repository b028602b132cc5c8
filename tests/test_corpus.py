"""Material no one here wrote: every screenplay of tests/corpus/ imported, checked, built and
exported to every format, and each export read back by a reader storylang did not write
(OpenTimelineIO, pycmx for the EDL, lxml for the XML formats, screenplain for Fountain), then
compared with the film: clip order, record times, total length (the MP4's frames), spoken lines.

The corpus (tests/corpus/screenplain/): the Fountain test files of screenplain (MIT licence,
copyright Martin Vilcans and contributors, LICENSE.txt beside them; commit 7cd18cc9 of
github.com/vilcans/screenplain), exercising title pages, dual dialogue, notes, boneyards,
sections, page breaks, scene numbers, forced elements and a UTF-8 BOM; and a whole short
screenplay dedicated to the public domain (tests/corpus/ebscreenplays/, SOURCE.md there): three
scenes, six speakers, some sixty lines.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from media import count_frames
from storylang.cli import main
from storylang.timeline import Timeline

CORPUS = Path(__file__).parent / "corpus"
# a screenplay of one forced transition has nothing to film: it has a test of its own
NOTHING_TO_FILM = {"forced-transition.fountain"}
SCREENPLAYS = sorted(p for p in CORPUS.rglob("*.fountain") if p.name not in NOTHING_TO_FILM)


def run(*args, ok=(0,)):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code in ok and "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Per screenplay: its script, its film, its edit list and an export in every format."""
    cache: dict[str, tuple] = {}

    def make(source: Path):
        if source.name not in cache:
            d = tmp_path_factory.mktemp(source.stem)
            script = d / f"{source.stem}.story"
            run("import", source, "-o", script)
            run("check", script)
            run("build", script, "--preview")
            film = d / "build" / source.stem / f"{source.stem}-preview.mp4"
            timeline = Timeline.model_validate_json((d / "build" / source.stem / "timeline.json").read_text())
            exports = {}
            for fmt, ext in (("otio", "otio"), ("edl", "edl"), ("fcp7", "xml"), ("fcpx", "fcpxml"),
                             ("fountain", "fountain")):
                exports[fmt] = d / f"out.{ext}"
                run("export", script, "--format", fmt, "-o", exports[fmt])
            cache[source.name] = (script, film, timeline, exports)
        return cache[source.name]

    return make


def names(t: Timeline) -> list[str]:
    return [{"#title": "title card", "#end": "end card"}.get(c.shot, f"shot {c.shot}") for c in t.clips]


@pytest.mark.parametrize("source", SCREENPLAYS, ids=lambda p: p.stem)
def test_a_screenplay_imports_builds_and_its_film_is_its_edit_list(built, source):
    _script, film, timeline, _ = built(source)
    assert count_frames(film) == timeline.frames


@pytest.mark.parametrize("source", SCREENPLAYS, ids=lambda p: p.stem)
def test_otio_reads_back_the_clips_length_and_lines(built, source):
    import opentimelineio as otio

    _, film, t, exports = built(source)
    read = otio.adapters.read_from_file(str(exports["otio"]))
    video = read.video_tracks()[0]
    assert [c.name for c in video.find_clips()] == names(t)
    assert video.duration().to_frames() == count_frames(film) == t.frames
    speech = [c for track in read.audio_tracks() if track.name.startswith("speech") for c in track.find_clips()]
    assert sorted((c.range_in_parent().start_time.to_frames(), c.name) for c in speech) == \
        sorted((s.start, s.text[:60]) for s in t.speech)


@pytest.mark.parametrize("source", SCREENPLAYS, ids=lambda p: p.stem)
def test_pycmx_reads_the_edl_in_the_films_order_to_its_last_frame(built, source):
    import pycmx

    _, film, t, exports = built(source)
    edl = pycmx.parse_cmx3600(io.StringIO(exports["edl"].read_text()))
    edits = [e for event in edl.events for e in event.edits]
    order = []
    for e in edits:
        if e.clip_name and (not order or order[-1] != e.clip_name):
            order.append(e.clip_name)
    assert order == names(t)
    reels = {}
    for e in edits:
        assert reels.setdefault(e.clip_name, e.source) == e.source  # one reel per shot
    assert len(set(reels.values())) == len(reels)  # and never one reel for two shots
    fps = round(Fraction(t.fps_num, t.fps_den))
    hh, mm, ss, ff = (int(x) for x in edits[-1].record_out.replace(";", ":").split(":"))
    assert ((hh * 60 + mm) * 60 + ss) * fps + ff == count_frames(film)


@pytest.mark.parametrize("source", SCREENPLAYS, ids=lambda p: p.stem)
def test_the_xml_formats_parse_and_hold_every_clip_in_order(built, source):
    import opentimelineio as otio
    from lxml import etree

    _, film, t, exports = built(source)
    fcp7 = etree.parse(str(exports["fcp7"]))
    video = fcp7.find(".//sequence/media/video")
    assert [c.findtext("name") for c in video.iter("clipitem")] == names(t)
    read = otio.adapters.read_from_file(str(exports["fcp7"]), adapter_name="fcp_xml")
    assert read.video_tracks()[0].duration().to_frames() == count_frames(film)
    for track in read.audio_tracks():  # no line read back at another's time, nor past the film's end
        assert track.duration().to_frames() <= t.frames
    fcpx = etree.parse(str(exports["fcpx"]))
    assert [c.get("name") for c in fcpx.iter("asset-clip")][:len(names(t))] == names(t)


@pytest.mark.parametrize("source", SCREENPLAYS, ids=lambda p: p.stem)
def test_screenplain_reads_every_spoken_line_of_the_fountain_export(built, source):
    from screenplain.parsers import fountain

    _, _, t, exports = built(source)
    play = fountain.parse(io.StringIO(exports["fountain"].read_text()))
    said = []
    for p in play.paragraphs:
        dialogs = [p] if type(p).__name__ == "Dialog" else getattr(p, "left", None) and [p.left, p.right] or []
        for d in dialogs:
            said.append(" ".join(str(text) for is_paren, text in d.blocks if not is_paren))
    assert [" ".join(s.text.split()) for s in sorted(t.speech, key=lambda s: s.start)] == said


@pytest.mark.parametrize("name", sorted(NOTHING_TO_FILM))
def test_a_screenplay_with_nothing_to_film_is_refused_alike_by_check_and_build(tmp_path, name):
    script = tmp_path / "film.story"
    run("import", next(CORPUS.rglob(name)), "-o", script)
    for command in ("check", "build"):
        assert "error: this film has no shots yet" in run(command, script, ok=(1,)).output


def test_the_corpus_is_recorded_with_its_licence():
    assert len(SCREENPLAYS) >= 15
    assert "Permission is hereby granted" in (CORPUS / "screenplain" / "LICENSE.txt").read_text()
