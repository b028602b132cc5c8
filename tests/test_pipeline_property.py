"""Property tests of the whole pipeline: hypothesis writes small films (any text, quotes and
apostrophes, repeated lines and names, one voice for everyone, every transition, lines longer
than their shot) and each is built and exported. Whatever it is, the build succeeds or stops with
errors at their places, the film is exactly its edit list, and the OTIO and FCP7 exports read
back with the film's clips, length and lines.

STORYC_PIPELINE_EXAMPLES sets how many films (default 12: enough to meet a line said twice, which
crashed the sound's mix before it was fixed).
"""

from __future__ import annotations

import os
import re

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from media import count_frames
from storylang.cli import main
from storylang.timeline import Timeline

EXAMPLES = int(os.environ.get("STORYC_PIPELINE_EXAMPLES", "12"))
LINES = ["Again.", "It's late.", 'She said "no".', "*/ not a comment", "Ça va ? Oui.", "Wait—", "Again."]
TRANSITIONS = ["> cut", "> dissolve 0.5s", "> wipe left 0.5s", "> fade through black 1s", "> crossfade 6f"]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def film(draw) -> str:
    out = ['format 256x144 @ 24fps', "character MARA", '  voice "en-us"', "character TOM", '  voice "en-us"',
           "EXT. QUAY - NIGHT"]
    for i in range(draw(st.integers(1, 4))):
        seconds = draw(st.sampled_from(["1s", "2s", "12f"]))
        out.append(f"  shot {i + 1} {draw(st.sampled_from(['wide', 'close on MARA', 'medium on TOM']))} {seconds}")
        out.append(f"    action {quoted(draw(TEXT))}")
        for _ in range(draw(st.integers(0, 2))):
            who = draw(st.sampled_from(["MARA", "TOM", "narrate"]))
            line = draw(st.sampled_from(LINES) | TEXT.filter(lambda s: s.strip() and s.strip()[0].isalnum()))
            out.append(f"    narrate {quoted(line)}" if who == "narrate" else f"    {who}: {' '.join(line.split())}")
        if draw(st.booleans()):
            out.append("  " + draw(st.sampled_from(TRANSITIONS)))
    if out[-1].startswith("  >"):
        out.pop()
    return "\n".join(out) + "\n"


PLACE = re.compile(r"^\S.*:\d+:\d+: error: ", re.M)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=film())
def test_every_film_builds_as_its_edit_list_and_exports_read_back_equal(tmp_path_factory, text):
    import opentimelineio as otio

    d = tmp_path_factory.mktemp("prop")
    (d / "film.story").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(d / "film.story"), "--preview"])
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    if result.exit_code != 0:
        assert result.exit_code == 1 and PLACE.search(result.output), (text, result.output)
        return
    t = Timeline.model_validate_json((d / "build" / "film" / "timeline.json").read_text())
    assert count_frames(d / "build" / "film" / "film-preview.mp4") == t.frames
    assert sum(c.frames for c in t.clips) - sum(c.transition.frames for c in t.clips[:-1]
                                                 if c.transition and c.transition.kind != "cut") == t.frames
    for fmt, ext in (("otio", "otio"), ("fcp7", "xml")):
        out = d / f"film.{ext}"
        exported = CliRunner().invoke(main, ["export", str(d / "film.story"), "--format", fmt, "-o", str(out)])
        assert exported.exit_code == 0, (text, exported.output)
        read = otio.adapters.read_from_file(str(out), adapter_name="otio_json" if fmt == "otio" else "fcp_xml")
        video = read.video_tracks()[0]
        assert video.duration().to_frames() == t.frames, (fmt, text)
        assert len(list(video.find_clips())) == len(t.clips)
        speech = [c for track in read.audio_tracks() for c in track.find_clips()]  # no music in these films
        assert sorted(c.range_in_parent().start_time.to_frames() for c in speech) == sorted(s.start for s in t.speech)
