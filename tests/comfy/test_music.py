"""`music generate "words" 60s`: a scene's music made on ComfyUI with the core ACE-Step nodes (v1,
and 1.5 on 0.33), one job of the pool cached by its graph, mixed exactly as a file cue is; where
it is not made (the animatic, a server without the nodes, a failed render) its fallback plays."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from storylang.build import BuildOptions, build
from storylang.cli import main
from storylang.comfy.graphs import compile_music
from storylang.comfy.schema import VERSIONS, snapshot
from storylang.render.comfy import ComfySettings
from storylang.resolve import resolve_file

from fake_server import FakeComfy
from media import ffmpeg, mean_volume

FILM = '''format 384x216 @ 24fps
model "dreamshaper_8.safetensors"
EXT. HARBOUR - DAY
  music generate "warm piano, slow, hopeful" 6s fade in 1s duck -12dB
  shot 1 wide 3s
    action "the harbour at dawn"
    narrate "The tide turns at six."
  shot 2 wide 2s
    action "gulls over the water"
INT. CABIN - NIGHT
  music generate "low cello drone" 3s using "ace_step_1.5_turbo_aio.safetensors" take 7 volume -8dB
  shot 3 close 2s
    action "a lamp"
'''


def comfy(server) -> BuildOptions:
    settings = ComfySettings(servers=[server.url], poll=0.2, backoff=0.05, timeout=5)
    return BuildOptions(renderer="comfy", comfy=settings, jobs=2, preview=True)


@pytest.fixture
def server():
    s = FakeComfy(step_delay=0.001, version="0.33.0").start()
    yield s
    s.stop()


def test_the_music_graphs_validate_on_both_comfyui_versions(write_story):
    script = write_story(FILM)
    film, diags, _ = resolve_file(script, "film.story")
    assert not diags
    for version in VERSIONS:
        for kind in ("core", "full"):
            graphs = compile_music(film, script.parent, snapshot(kind, version))
            v1, v15 = graphs[0], graphs[1]
            assert not v1.diagnostics, (version, kind, v1.diagnostics)
            assert {n["class_type"] for n in v1.graph.values()} >= {"TextEncodeAceStepAudio", "EmptyAceStepLatentAudio",
                                                                    "VAEDecodeAudio", "SaveAudio"}
            assert v1.graph["latent"]["inputs"]["seconds"] == 6.0
            if version == "0.33":
                assert not v15.diagnostics
                assert v15.graph["positive"]["class_type"] == "TextEncodeAceStepAudio1.5"
                assert v15.graph["sampler"]["inputs"]["seed"] == 7 and v15.graph["positive"]["inputs"]["duration"] == 3.0
            else:  # the 1.5 nodes came after 0.3.64: an error that says which model runs there
                assert v15.diagnostics and "ace_step_v1_3.5b" in v15.diagnostics[0].hint
    # the same words make the same graph, in any process
    again = compile_music(resolve_file(script, "film.story")[0], script.parent, snapshot("core", "0.33"))
    assert again[0].graph == compile_music(film, script.parent, snapshot("core", "0.33"))[0].graph


def _pcm(film: Path) -> bytes:
    return subprocess.run([ffmpeg(), "-v", "error", "-i", str(film), "-map", "0:a", "-f", "s16le", "-"],
                          capture_output=True, check=True).stdout


def test_generated_music_is_rendered_once_and_mixed_like_a_file_cue(write_story, server, tmp_path):
    script = write_story(FILM)
    report = build(script, comfy(server))
    timeline = json.loads(report.timeline.read_text())
    music = timeline["music"]
    assert [(m["start"], m["end"], m["volume_db"], m["fade_in"], m["duck_db"]) for m in music] == \
        [(0, 120, -12.0, 24, -12.0), (120, 168, -8.0, 0, -10.0)]
    made = [script.parent / m["file"] for m in music]
    assert all(p.suffix == ".flac" and p.is_file() for p in made)
    graphs = [g for g in server.graphs.values() if g["save"]["class_type"] == "SaveAudio"]
    assert len(graphs) == 2 and not any("not made" in n for n in report.notes), report.notes
    assert report.notes[0].endswith("music: 2 of 2 cues made")
    # the music is heard: the cabin's cue is louder (-8 dB) than the harbour's after the line
    assert mean_volume(report.output, 6.0, 0.8) > mean_volume(report.output, 4.2, 0.7) > -40
    # a second build renders nothing
    submitted = len(server.submitted)
    build(script, comfy(server))
    assert len(server.submitted) == submitted
    # the same music as file cues: the same sound, sample for sample (volume, fades, ducking, loudness)
    other = tmp_path / "files"
    other.mkdir()
    for i, p in enumerate(made):
        shutil.copy(p, other / f"cue{i}.flac")
    as_files = FILM.replace('music generate "warm piano, slow, hopeful" 6s', 'music "cue0.flac"').replace(
        'music generate "low cello drone" 3s using "ace_step_1.5_turbo_aio.safetensors" take 7', 'music "cue1.flac"')
    (other / "film.story").write_text(as_files)
    by_file = build(other / "film.story", BuildOptions(preview=True))
    assert _pcm(by_file.output) == _pcm(report.output)


def test_without_comfyui_the_fallback_plays_and_the_note_says_why(write_story):
    script = write_story(FILM.replace('fade in 1s duck', 'fallback "theme.ogg" fade in 1s duck'))
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=330:duration=8", "-c:a", "libvorbis",
                    str(script.parent / "theme.ogg")], check=True)
    result = CliRunner().invoke(main, ["build", "--preview", str(script)])
    assert result.exit_code == 0, result.output
    assert "film.story:4) not made: the animatic renderer makes no music" in result.output
    assert "its fallback theme.ogg plays instead" in result.output
    assert "film.story:11) not made" in result.output and "the scene has no music" in result.output
    timeline = json.loads((script.parent / "build" / "film" / "timeline.json").read_text())
    assert [m["file"] for m in timeline["music"]] == ["theme.ogg"]


def test_a_failed_music_render_is_a_note_and_the_film_still_builds(write_story):
    server = FakeComfy(step_delay=0.001, version="0.33.0", fail={"VAEDecodeAudio": "CUDA out of memory"}).start()
    try:
        script = write_story(FILM)
        report = build(script, comfy(server))
    finally:
        server.stop()
    notes = [n for n in report.notes if "not made" in n]
    assert report.notes[0].endswith("music: 0 of 2 cues made")
    assert len(notes) == 2 and all("it failed on" in n and "CUDA out of memory" in n for n in notes), notes
    assert not report.failures  # the shots rendered
    assert not (script.parent / "build" / "film" / "stamp.json").exists()  # the next build tries the music again
    assert json.loads(report.timeline.read_text())["music"] == []


def test_a_server_without_ace_step_15_makes_the_v1_cue_and_says_why_not_the_other(write_story):
    server = FakeComfy(step_delay=0.001).start()  # 0.3.64: no 1.5 nodes
    try:
        report = build(write_story(FILM), comfy(server))
    finally:
        server.stop()
    notes = [n for n in report.notes if "not made" in n]
    assert notes == [n for n in notes if n.startswith("scene 2 music")] and len(notes) == 1
    assert "TextEncodeAceStepAudio1.5" in notes[0]
    assert len(json.loads(report.timeline.read_text())["music"]) == 1
