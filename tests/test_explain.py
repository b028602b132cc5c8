"""`storyc build --dry-run` and `storyc status` say what would be redone and why, in the writer's terms."""

import shutil

import pytest
from click.testing import CliRunner

from storylang.build import BuildOptions, build
from storylang.cli import main

from conftest import tiny_png

FILM = '''title "Explain" 0s
format 256x144 @ 12fps
narrator "en-us" rate 180

character MARA
  look "silver braid"
  voice "en-us+f3" rate 170

EXT. CLIFF - NIGHT
  shot 1 wide 2s
    camera push in
    action "the beam sweeps"
    narrate "Every night."
  > dissolve 0.5s

  shot 2 close on MARA 2s
    MARA: Not tonight.

  shot 3 medium 2s
    action "the lamp goes dark"
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    (d / "film.story").write_text(FILM)
    build(d / "film.story", BuildOptions(jobs=2, preview=True))
    return d


def plan(built, tmp_path, old, new):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    (copy / "film.story").write_text(FILM.replace(old, new))
    report = build(copy / "film.story", BuildOptions(jobs=2, preview=True, dry_run=True))
    return [r.replace(str(copy) + "/", "") for r in report.reasons]


def test_a_film_never_built_is_new_throughout(tmp_path):
    (tmp_path / "film.story").write_text(FILM)
    reasons = build(tmp_path / "film.story", BuildOptions(jobs=2, preview=True, dry_run=True)).reasons
    assert reasons and all(r.split(": ", 1)[1].startswith("new") for r in reasons), reasons
    assert reasons[-1] == "sound: new"


def test_nothing_changed_nothing_to_redo(built, tmp_path):
    assert plan(built, tmp_path, "", "") == []


@pytest.mark.parametrize("old, new, expected", [
    ('narrate "Every night."', 'narrate "Each night."',
     ["shot 1 words: lines changed (film.story:10)", "line 1:0 speech: text changed (film.story:13)",
      "segment 1: lines changed (film.story:10)", "sound: lines changed"]),  # said before the dissolve
    ('voice "en-us+f3" rate 170', 'voice "en-us+f3" rate 150', ["line 2:0 speech: voice rate of MARA changed (film.story:17)"]),
    ("MARA: Not tonight.", "MARA: Not now.",
     ["shot 2 words: lines changed (film.story:16)", "line 2:0 speech: text changed (film.story:17)",
      "segment 2: lines changed (film.story:16)", "sound: lines changed"]),  # shown once the dissolve is over
    ("camera push in", "camera pan left", ["shot 1 words: camera changed (film.story:10)",
                                           "segment 1: camera changed (film.story:10)",
                                           "segment 1-2: camera changed (film.story:10)"]),
    ("shot 3 medium 2s", "shot 3 medium 3s", ["segment 3: length changed (film.story:19)",
                                              "sound: the film's length changed (66 → 78 frames)"]),
    ("> dissolve 0.5s", "> wipe left 0.5s", ["segment 1-2: transition changed (film.story:10)"]),
    ('look "silver braid"', 'look "short grey hair"', []),  # the animatic does not draw looks
    ("shot 3 medium 2s", "shot 3 close 2s", ["shot 3 card: framing changed (film.story:19)",
                                             "shot 3 words: framing changed (film.story:19)",
                                             "segment 3: framing changed (film.story:19)"]),
])
def test_each_kind_of_edit_redoes_exactly_its_artifacts_and_says_why(built, tmp_path, old, new, expected):
    reasons = plan(built, tmp_path, old, new)
    for want in expected:
        assert want in reasons, reasons
    kinds = {r.split(":")[0] for r in reasons}
    assert kinds <= {w.split(":")[0] for w in expected} | {"sound"}, reasons


def test_a_reference_image_edit_is_named(tmp_path):
    text = FILM.replace('look "silver braid"', 'look "silver braid"\n  reference "mara.png"')
    (tmp_path / "film.story").write_text(text)
    (tmp_path / "mara.png").write_bytes(tiny_png())
    build(tmp_path / "film.story", BuildOptions(jobs=2, preview=True))
    (tmp_path / "mara.png").write_bytes(tiny_png(color=(1, 2, 3)))
    result = CliRunner().invoke(main, ["status", str(tmp_path / "film.story")])
    assert result.exit_code == 0
    assert "plan for" in result.output  # the animatic does not show references: nothing to redo
    assert "shot" not in result.output.split("plan for")[0]


def test_going_back_to_an_older_script_rebuilds_nothing(tmp_path):
    script = tmp_path / "film.story"
    script.write_text(FILM)
    build(script, BuildOptions(jobs=2, preview=True))
    script.write_text(FILM.replace("the lamp goes dark", "the lamp burns"))
    build(script, BuildOptions(jobs=2, preview=True))
    script.write_text(FILM)  # git checkout of the older version
    again = build(script, BuildOptions(jobs=2, preview=True))
    assert (again.rendered, again.labels_drawn, again.lines_spoken, again.picture, again.sound) == \
        (0, 0, 0, "reused", "reused")


def test_the_cache_keeps_to_its_size_least_recently_used_first(tmp_path):
    from storylang.cache import Cache

    script = tmp_path / "film.story"
    script.write_text(FILM)
    build(script, BuildOptions(jobs=2, preview=True))
    cache = Cache(tmp_path / "build" / "cache")
    first = {p for p in cache.root.rglob("*") if p.is_file()}
    script.write_text(FILM.replace("shot 3 medium 2s", "shot 3 close 2s").replace("Every night.", "Never."))
    report = build(script, BuildOptions(jobs=2, preview=True, cache_size=1))  # one byte: keep only what is used
    assert any("removed" in n for n in report.notes)
    left = {p for p in cache.root.rglob("*") if p.is_file()}
    gone = first - left
    assert gone and all(p.exists() for p in left)
    again = build(script, BuildOptions(jobs=2, preview=True, cache_size=1))
    assert (again.rendered, again.lines_spoken, again.picture, again.sound) == (0, 0, "reused", "reused")


def test_music_an_included_file_and_the_format_are_explained(tmp_path):
    from media import ffmpeg
    import subprocess

    for name, freq in (("a.ogg", 220), ("b.ogg", 330)):
        subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", f"sine=f={freq}:d=8", str(tmp_path / name)],
                       check=True)
    (tmp_path / "cast.story").write_text('character MARA\n  look "silver braid"\n  voice "en-us+f3" rate 170\n')
    text = FILM.replace('character MARA\n  look "silver braid"\n  voice "en-us+f3" rate 170\n', 'include "cast.story"\n')
    text = text.replace("EXT. CLIFF - NIGHT\n", 'EXT. CLIFF - NIGHT\n  music "a.ogg" volume -18dB\n')
    script = tmp_path / "film.story"
    script.write_text(text)
    build(script, BuildOptions(jobs=2, preview=True))

    def reasons():
        report = build(script, BuildOptions(jobs=2, preview=True, dry_run=True))
        return [r.replace(str(tmp_path) + "/", "") for r in report.reasons]

    script.write_text(text.replace('music "a.ogg"', 'music "b.ogg"'))
    assert reasons() == ["sound: music or the mix changed"]
    script.write_text(text)
    (tmp_path / "cast.story").write_text('character MARA\n  look "silver braid"\n  voice "en-us+f3" rate 150\n')
    assert reasons() == ["line 2:0 speech: voice rate of MARA changed (film.story:16)", "sound: lines changed"]
    (tmp_path / "cast.story").write_text('character MARA\n  look "silver braid"\n  voice "en-us+f3" rate 170\n')
    script.write_text(text.replace("format 256x144 @ 12fps", "format 384x216 @ 12fps"))
    found = reasons()
    assert "shot 1 card: format changed (film.story:9)" in found and "segment 3: format changed (film.story:18)" in found


def test_status_of_a_script_with_an_error_shows_it_and_says_it_cannot_plan(tmp_path):
    (tmp_path / "film.story").write_text(FILM.replace("camera push in", "camera psh in"))
    result = CliRunner().invoke(main, ["status", str(tmp_path / "film.story")])
    assert result.exit_code == 1
    assert "film.story:11:12: error: unknown camera move" in result.output
    assert "storyc: cannot plan the build: 1 error" in result.output
    assert not (tmp_path / "build").exists()  # a plan writes nothing
