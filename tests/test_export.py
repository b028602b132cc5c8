"""`storyc export`: the built edit list as OTIO, EDL, FCP7 XML and FCPXML, read back by OpenTimelineIO."""

import re

import opentimelineio as otio
import pytest
from click.testing import CliRunner

from storylang.cli import main

FILM = '''title "Export" 0s
format 256x144 @ 24fps

character MARA
  voice "en-us+f3"

EXT. QUAY - DAWN
  shot 1 wide 2s
    narrate "The boats rock."
  > dissolve 0.5s
  shot 2 close on MARA 2s
    MARA: Not tonight.

INT. HUT - DAY
  shot 3 medium 1s
'''


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    (d / "film.story").write_text(FILM)
    out = {}
    for fmt, ext in (("otio", "otio"), ("edl", "edl"), ("fcp7", "xml"), ("fcpx", "fcpxml")):
        result = CliRunner().invoke(main, ["export", str(d / "film.story"), "--format", fmt])
        assert result.exit_code == 0, result.output
        out[fmt] = d / "build" / "film" / f"film.{ext}"
    return out


@pytest.mark.parametrize("fmt", ["otio", "edl", "fcp7", "fcpx"])
def test_every_format_reads_back_with_the_clips_in_order_and_the_films_length(exported, fmt):
    tl = otio.adapters.read_from_file(str(exported[fmt]))
    video = tl.video_tracks()[0]
    assert [c.name for c in video if isinstance(c, otio.schema.Clip)] == ["shot 1", "shot 2", "shot 3"]
    assert video.duration().value == 2 * 24 + 2 * 24 + 24 - 12  # the film's frames: the dissolve overlaps
    if fmt != "fcpx":  # the FCPXML adapter reads transitions back as plain cuts
        assert [t.duration().value for t in video if isinstance(t, otio.schema.Transition)] == [12]


def test_otio_keeps_lines_scenes_speech_and_the_shots_provenance(exported):
    tl = otio.adapters.read_from_file(str(exported["otio"]))
    clips = [c for c in tl.video_tracks()[0] if isinstance(c, otio.schema.Clip)]
    assert [m.name for c in clips for m in c.markers] == ["The boats rock.", "Not tonight."]
    assert [m.name for m in tl.tracks.markers] == ["EXT. QUAY - DAWN", "INT. HUT - DAY"]
    meta = clips[1].metadata["storylang"]
    assert meta["shot"] == "2" and meta["where"].endswith("film.story:11") and isinstance(meta["seed"], int)
    assert clips[0].media_reference.target_url.startswith("file://")
    speech = [c for c in tl.audio_tracks()[0] if isinstance(c, otio.schema.Clip)]
    assert len(speech) == 2


def test_the_edl_has_short_unique_reels_and_no_path_comments(exported):
    text = exported["edl"].read_text()
    events = [line.split() for line in text.splitlines() if line[:3].isdigit()]
    reels = {e[1] for e in events}
    assert reels == {"SH1", "SH2", "SH3"} and all(len(r) <= 8 for r in reels)
    assert "* FROM CLIP: " not in text and "* FROM CLIP NAME:  shot 1" in text


def test_media_gathers_every_file_into_one_folder_that_survives_a_move(exported, tmp_path):
    import os
    import shutil

    script = exported["otio"].parents[2] / "film.story"
    out = tmp_path / "handoff" / "film.otio"
    result = CliRunner().invoke(main, ["export", str(script), "--format", "otio", "-o", str(out),
                                       "--media", str(tmp_path / "handoff" / "media")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "handoff" / "media").iterdir())
    assert names[:3] == ["001_shot_1.png", "002_shot_2.png", "003_shot_3.png"]
    moved = tmp_path / "elsewhere"
    shutil.move(str(tmp_path / "handoff"), moved)
    tl = otio.adapters.read_from_file(str(moved / "film.otio"))
    urls = [c.media_reference.target_url for c in tl.find_clips()]
    assert urls and all(not u.startswith(("/", "file:")) and os.path.isfile(moved / u) for u in urls)


GOLDEN = __import__("pathlib").Path(__file__).parent / "golden_export"


@pytest.fixture(scope="module")
def lighthouse(tmp_path_factory):
    import shutil

    from conftest import EXAMPLES

    d = tmp_path_factory.mktemp("lighthouse")
    shutil.copytree(EXAMPLES, d / "ex", ignore=shutil.ignore_patterns("build"))
    return d / "ex" / "lighthouse.story"


@pytest.mark.parametrize("tools", ["as installed", "an ffprobe on PATH"])
@pytest.mark.parametrize("fmt, ext", [("otio", "otio"), ("edl", "edl"), ("fcp7", "xml"), ("fcpx", "fcpxml")])
def test_the_demo_exports_as_its_golden_file(lighthouse, fmt, ext, tools, tmp_path, monkeypatch):
    """Set STORYLANG_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change.
    What is installed on the machine never changes an export (the FCPXML adapter ran `ffprobe`)."""
    import os

    if tools == "an ffprobe on PATH":
        (tmp_path / "ffprobe").write_text("#!/bin/sh\necho 1920x1080\n")
        (tmp_path / "ffprobe").chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    out = lighthouse.parent / "handoff" / f"lighthouse.{ext}"
    result = CliRunner().invoke(main, ["export", str(lighthouse), "--format", fmt, "-o", str(out),
                                       "--media", str(lighthouse.parent / "handoff" / "media")])
    assert result.exit_code == 0, result.output
    # the copies' absolute URLs (FCP formats) depend on where the test runs: name that place FILM
    text = out.read_text().replace((lighthouse.parent / "handoff").resolve().as_uri(), "file:///FILM")
    text = text.replace(str((lighthouse.parent / "handoff").resolve()), "/FILM")
    # the pictures' digests depend on the fonts and Pillow drawing the cards: not part of the format
    text = re.sub(r'("picture": \[)[^\]]*(\])', r"\1\2", text)
    golden = GOLDEN / f"lighthouse.{ext}"
    if os.environ.get("STORYLANG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("rate, num, den", [("23.976fps", 24000, 1001), ("29.97fps", 30000, 1001)])
def test_ntsc_rates_are_written_as_the_exact_rational_in_every_format(tmp_path, rate, num, den):
    (tmp_path / "film.story").write_text(FILM.replace("@ 24fps", f"@ {rate}"))
    files = {}
    for fmt, ext in (("otio", "otio"), ("edl", "edl"), ("fcp7", "xml"), ("fcpx", "fcpxml")):
        files[fmt] = tmp_path / f"film.{ext}"
        result = CliRunner().invoke(main, ["export", str(tmp_path / "film.story"), "--format", fmt,
                                           "-o", str(files[fmt])])
        assert result.exit_code == 0, result.output
    timebase = round(num / den)
    xml = files["fcp7"].read_text()
    assert xml.count("<ntsc>TRUE</ntsc>") > 0 and "<ntsc>FALSE</ntsc>" not in xml
    assert set(re.findall(r"<timebase>(\d+)</timebase>", xml)) == {str(timebase)}
    assert set(re.findall(r'frameDuration="([^"]*)"', files["fcpx"].read_text())) == {f"{den}/{num}s"}
    for fmt in ("otio", "fcp7", "fcpx", "edl"):
        tl = otio.adapters.read_from_file(str(files[fmt]), rate=num / den) if fmt == "edl" else \
            otio.adapters.read_from_file(str(files[fmt]))
        clips = [c for c in tl.video_tracks()[0] if isinstance(c, otio.schema.Clip)]
        assert [c.name for c in clips] == ["shot 1", "shot 2", "shot 3"], fmt
        if fmt == "fcpx":
            continue  # its reader truncates a rate to whole frames a second (23): the file has 1001/24000s
        assert all(abs(c.duration().rate - num / den) < 1e-6 for c in clips), fmt
        assert tl.video_tracks()[0].duration().rescaled_to(num / den).value == pytest.approx(
            round(2 * num / den) * 2 + round(num / den) - round(0.5 * num / den)), fmt


def test_build_writes_the_asked_timelines_beside_the_film(tmp_path):
    (tmp_path / "film.story").write_text(FILM)
    result = CliRunner().invoke(main, ["build", str(tmp_path / "film.story"), "--export", "otio,fcp7"])
    assert result.exit_code == 0, result.output
    for name in ("film.mp4", "film.otio", "film.xml", "film.xml.provenance.json"):
        assert (tmp_path / "build" / "film" / name).is_file(), name
    tl = otio.adapters.read_from_file(str(tmp_path / "build" / "film" / "film.otio"))
    assert [c.name for c in tl.find_clips() if c.name.startswith("shot")][:3] == ["shot 1", "shot 2", "shot 3"]
    bad = CliRunner().invoke(main, ["build", str(tmp_path / "film.story"), "--export", "otio,mp3"])
    assert bad.exit_code == 2 and "--export 'mp3'" in bad.output


def test_fcp7_xml_has_the_films_format_and_file_urls_resolve_reads_with_non_ascii_names(tmp_path):
    folder = tmp_path / "été à Sète"
    folder.mkdir()
    (folder / "film été.story").write_text(FILM.replace('title "Export" 0s', 'title "Été à Sète" 0s'))
    out = folder / "montage.xml"
    result = CliRunner().invoke(main, ["export", str(folder / "film été.story"), "--format", "fcp7", "-o", str(out),
                                       "--media", str(folder / "médias")])
    assert result.exit_code == 0, result.output
    xml = out.read_text(encoding="utf-8")
    fmt = re.search(r"<format>.*?</format>", xml, re.S).group(0)
    for tag in ("<width>256</width>", "<height>144</height>", "<timebase>24</timebase>", "<ntsc>FALSE</ntsc>",
                "<pixelaspectratio>square</pixelaspectratio>"):
        assert tag in fmt, tag
    urls = re.findall(r"<pathurl>([^<]*)</pathurl>", xml)
    assert urls and all(u.startswith("file:///") and "%C3%A9" in u and " " not in u for u in urls)
    tl = otio.adapters.read_from_file(str(out))
    assert tl.name == "Été à Sète"
    from urllib.parse import unquote, urlparse

    assert all(__import__("os").path.isfile(unquote(urlparse(c.media_reference.target_url).path))
               for c in tl.find_clips())


@pytest.mark.parametrize("fmt", ["otio", "edl", "fcp7", "fcpx"])
def test_quotes_and_repeated_lines_export_in_every_format(tmp_path, fmt):
    (tmp_path / "film.story").write_text(
        'format 384x216 @ 24fps\ncharacter MARA\n  voice "en-us"\nEXT. A - DAY\n'
        '  shot "Ida\'s \\"boat\\"" close on MARA 2s\n    MARA: It\'s late.\n'
        '  shot 2 close on MARA 2s\n    MARA: It\'s late.\n')
    out = tmp_path / f"film.{fmt}"
    result = CliRunner().invoke(main, ["export", str(tmp_path / "film.story"), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "It's late." in out.read_text() or "It&apos;s late." in out.read_text() or fmt == "edl"


def test_wipes_and_fades_keep_their_kind_where_the_format_can_say_it(tmp_path):
    import io

    import pycmx

    (tmp_path / "film.story").write_text(
        'format 384x216 @ 24fps\nEXT. A - DAY\n  shot 1 wide 2s\n  > wipe 0.5s\n  shot 2 wide 2s\n'
        '  > fade through black 1s\n  shot 3 wide 2s\n  > dissolve 5f\n  shot 4 wide 2s\n')
    for fmt in ("edl", "fcp7", "fcpx"):
        out = tmp_path / f"film.{fmt}"
        assert CliRunner().invoke(main, ["export", str(tmp_path / "film.story"), "--format", fmt,
                                         "-o", str(out)]).exit_code == 0
    edl = pycmx.parse_cmx3600(io.StringIO((tmp_path / "film.edl").read_text()))
    kinds = [e.transition.kind for ev in edl.events for e in ev.edits if e.transition and e.transition.kind != "C"]
    assert kinds[0] == "W"
    effects = re.findall(r"<effectid>([^<]+)</effectid>", (tmp_path / "film.fcp7").read_text())
    assert effects == ["Edge Wipe", "Dip to Color Dissolve", "Cross Dissolve"]
    # FCPXML: Final Cut's own transitions in the spine, each where the film's overlap starts
    from lxml import etree

    root = etree.parse(str(tmp_path / "film.fcpx"))
    uids = {e.get("id"): e.get("uid") for e in root.iterfind("resources/effect")}
    spine = root.find(".//sequence/spine")
    transitions = [(e.get("name"), e.get("offset"), e.get("duration"), uids[e.find("filter-video").get("ref")])
                   for e in spine if e.tag == "transition"]
    assert transitions == [("Edge Wipe", "3/2s", "1/2s", "FxPlug:857E2FBA-98DB-411B-A88C-CE6ABC1F65D8"),
                           ("Fade To Color", "5/2s", "1s", "FxPlug:F779C565-486D-4633-8035-0374B4DB8F5C"),
                           ("Cross Dissolve", "103/24s", "5/24s", "FxPlug:4731E73A-8DAC-4113-9A30-AE85B1761265")]
    assert [e.tag for e in spine] == ["clip", "transition"] * 3 + ["clip"]
    # the next clip's trimmed head is the transition's handle before the cut
    clips = [e for e in spine if e.tag == "clip"]
    assert clips[3].get("offset") == "53/12s" and clips[3].get("start") == "1/8s"
