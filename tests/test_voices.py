"""Voice engines: `voice "nova" engine openai` speaks a character's lines on a server of the OpenAI
speech API (the test server answers with real audio made by ffmpeg), the narrator stays on
espeak-ng, and timing, subtitles and the cache work on the server's real samples."""

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from storylang import atomic, tts
from storylang.build import BuildFailed, BuildOptions, build
from storylang.cli import main
from storylang.speech import wav_samples
from storylang.toolchain import find_ffmpeg

sys.path.insert(0, str(Path(__file__).parent / "llm"))
from fake_openai import FakeOpenAI  # noqa: E402

FILM = '''format 384x216 @ 24fps
narrator "en-us"
character MARA
  voice "nova" engine openai
EXT. HARBOUR - DAY
  shot 1 wide 2s
    narrate "The tide turns at six."
  shot 2 close on MARA 1s
    MARA: High water, and the boats still out.
'''
KEY = "sk-test-d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def speech_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.mark.parametrize("fmt", tts.FORMATS)
def test_every_format_a_server_returns_is_decoded_to_its_real_length(tmp_path, speech_server, fmt):
    settings = tts.TtsSettings(base_url=speech_server.url, format=fmt, model="tts-1")
    text = "High water at six."
    used = tts.speak(text, "nova", tmp_path / "line.wav", settings, find_ffmpeg().path)
    assert used["format"] == fmt and used["server"] == speech_server.url and len(used["answer_sha256"]) == 64
    seconds = wav_samples(tmp_path / "line.wav") / tts.RATE
    assert abs(seconds - len(text) * 0.05) < 0.1, seconds  # raw AAC keeps its encoder delay (about 85 ms)
    assert speech_server.requests[-1] == {"model": "tts-1", "voice": "nova", "input": text, "response_format": fmt}


def test_a_mixed_film_speaks_each_voice_on_its_engine_and_caches_the_servers_lines(write_story, speech_server,
                                                                                    monkeypatch):
    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    script = write_story(FILM)
    report = build(script, BuildOptions(preview=True))
    line = "High water, and the boats still out."
    assert [r["input"] for r in speech_server.requests] == [line]  # the narrator stayed on espeak-ng
    assert speech_server.headers[0]["Authorization"] == f"Bearer {KEY}"  # the user named the server
    # the shot grew to the server's line, and the subtitle lasts as long as the audio
    timeline = json.loads(report.timeline.read_text())
    spoken = next(s for s in timeline["speech"] if s["shot"] == "2")
    assert spoken["frames"] == 44  # 1.8 s of the server's audio at 24 fps, rounded up
    assert next(c for c in timeline["clips"] if c["shot"] == "2")["frames"] > 44  # the 1 s shot grew to hold it
    subtitle = next(s for s in timeline["subtitles"] if s["text"].startswith("MARA:"))
    assert (subtitle["start"], subtitle["end"]) == (spoken["start"], spoken["start"] + 44)
    # built again: nothing asked, and the key is nowhere in what the build wrote
    build(script, BuildOptions(preview=True))
    assert len(speech_server.requests) == 1
    for f in (script.parent / "build").rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


def test_a_server_only_the_project_names_gets_no_key(write_story, speech_server, monkeypatch):
    monkeypatch.delenv("STORYC_TTS_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    script = write_story(FILM, **{"storyc.toml": f'[tts]\nbase_url = "{speech_server.url}"\nformat = "mp3"\n'})
    build(script, BuildOptions(preview=True))
    assert speech_server.requests and KEY not in speech_server.headers[0].get("Authorization", "")
    script.write_text(FILM)
    (script.parent / "storyc.toml").write_text('[tts]\nkey_env = "AWS_SECRET_ACCESS_KEY"\n')
    result = CliRunner().invoke(main, ["build", str(script)])
    assert result.exit_code != 0 and "key_env" in result.output and "Traceback" not in result.output


def test_a_line_that_cannot_be_spoken_is_one_error_at_its_line(write_story, speech_server, monkeypatch):
    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(FILM.replace('"nova"', '"marble"'))
    result = CliRunner().invoke(main, ["build", str(script)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "film.story:9:" in result.output and "refused the line (HTTP 400" in result.output
    assert "'marble'" in result.output
    monkeypatch.setenv("STORYC_TTS_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    result = CliRunner().invoke(main, ["build", str(write_story(FILM))])
    assert result.exit_code == 1 and "cannot be reached" in result.output and "--voices espeak" in result.output


def test_voices_espeak_builds_offline_and_check_asks_no_server(write_story, speech_server, monkeypatch):
    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(FILM)
    assert CliRunner().invoke(main, ["check", str(script)]).exit_code == 0
    result = CliRunner().invoke(main, ["build", str(script), "--voices", "espeak"])
    assert result.exit_code == 0, result.output
    assert speech_server.requests == []


def test_a_wrong_engine_is_an_error_at_the_word(write_story):
    result = CliRunner().invoke(main, ["check", str(write_story(FILM.replace("engine openai", "engine opnai")))])
    assert result.exit_code == 1 and 'there is no voice engine "opnai"' in result.output
    assert 'did you mean "openai"' in result.output and "film.story:4:" in result.output


def test_build_failed_is_the_one_error_root(write_story, monkeypatch):
    monkeypatch.setenv("STORYC_TTS_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(BuildFailed) as e:
        build(write_story(FILM), BuildOptions(preview=True))
    assert e.value.diagnostics[0].file.endswith("film.story")


# -- direction

DIRECTED = '''format 384x216 @ 24fps
narrator "en-us+f3" rate 160 pitch 50
character MARA
  voice "nova" engine openai
EXT. HARBOUR - DAY
  shot 1 wide 2s
    MARA (whispering): High water.
    MARA: High water.
'''


def test_a_parenthetical_directs_espeak_by_the_table_and_a_server_by_instructions(write_story, speech_server,
                                                                                   monkeypatch):
    from storylang.direction import directed
    from storylang.film import Voice

    voice = Voice(id="en-us+f3", rate=160, pitch=50)
    assert directed(voice, "whispering") == Voice(id="en-us+whisperf", rate=144, pitch=50)
    assert directed(Voice(id="en-gb"), "angrily, then softly") == Voice(id="en-gb", rate=173, pitch=62)
    assert directed(voice, "V.O.") == voice and directed(voice, None) == voice
    assert directed(Voice(id="x", rate=440, pitch=95), "shouting") == Voice(id="x", rate=450, pitch=99)
    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(DIRECTED)
    build(script, BuildOptions(preview=True))
    assert sorted(str(r.get("instructions")) for r in speech_server.requests) == ["None", "whispering"]
    first, second = (sorted((script.parent / "build").rglob("speech/**/*.wav")))[:2]
    assert first.read_bytes() != second.read_bytes()  # the directed line sounds different
    # a server that refuses instructions: none are sent, so the directed line is the plain one
    (script.parent / "storyc.toml").write_text("[tts]\ninstructions = false\n")
    report = build(script, BuildOptions(preview=True))
    assert len(speech_server.requests) == 2 and report.lines_spoken == 0


def test_espeak_whispers_and_shouts_as_the_table_says(write_story):
    script = write_story('''format 384x216 @ 24fps
character MARA
  voice "en-us+f3"
EXT. HARBOUR - DAY
  shot 1 wide 2s
    MARA (whispering): High water.
    MARA (shouting): High water.
    MARA: High water.
''')
    result = CliRunner().invoke(main, ["check", str(script)])
    assert result.exit_code == 0 and "unknown voice" not in result.output, result.output
    build(script, BuildOptions(preview=True))
    records = [json.loads(p.read_text()) for p in (script.parent / "build").rglob("speech/**/*.json")]
    spoken = sorted((r["inputs"]["voice"]["id"], r["used"]["rate"], r["used"]["pitch"]) for r in records)
    assert spoken == [("en-us+f3", 175, 50), ("en-us+f3", 193, 70), ("en-us+whisperf", 158, 50)]


# -- the lock

def _lock_lines(script: Path) -> list[dict]:
    import tomllib

    return tomllib.loads(script.with_name(script.name + ".lock").read_text())["line"]


def _film_sound(film: Path) -> bytes:
    import subprocess

    return subprocess.run([find_ffmpeg().path, "-v", "error", "-i", str(film), "-map", "0:a", "-f", "s16le", "-"],
                          capture_output=True, check=True).stdout


def test_the_lock_pins_each_server_line_and_locked_builds_ask_no_server(write_story, speech_server, monkeypatch):
    import hashlib
    import shutil

    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(FILM)
    first = build(script, BuildOptions(preview=True))
    lines = _lock_lines(script)
    assert [(e["id"], e["where"], e["voice"]) for e in lines] == [("2:0", "film.story:9", "nova")]
    audio = speech_audio_digest(speech_server)
    assert lines[0]["audio"] == audio and lines[0]["server"] == speech_server.url
    sound = _film_sound(first.output)
    # --locked from the cache: no request, the same sound
    result = CliRunner().invoke(main, ["build", "--preview", "--locked", "--force", str(script)])
    assert result.exit_code == 0, result.output
    assert len(speech_server.requests) == 1
    # a fresh machine (no cache) with the lock: --locked asks nothing and says what to do
    shutil.rmtree(script.parent / "build")
    result = CliRunner().invoke(main, ["build", "--preview", "--locked", str(script)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "film.story:9:5: error: the audio film.story.lock pins for MARA's line is not in the cache" in result.output
    assert len(speech_server.requests) == 1
    # built without --locked: asked again, the same answer, the same lock and byte-identical sound
    lock_text = script.with_name("film.story.lock").read_text()
    again = build(script, BuildOptions(preview=True))
    assert len(speech_server.requests) == 2 and not any("audio changed" in n for n in again.notes)
    assert script.with_name("film.story.lock").read_text() == lock_text
    assert _film_sound(again.output) == sound and hashlib.sha256(sound).hexdigest()
    # a changed line is not pinned as it is now
    script.write_text(FILM.replace("boats still out", "boats all out"))
    result = CliRunner().invoke(main, ["build", "--preview", "--locked", str(script)])
    assert result.exit_code == 1 and "MARA's line is not pinned in film.story.lock as it is now" in result.output


def speech_audio_digest(server) -> str:
    """The SHA-256 of what the test server answers for FILM's line (it is deterministic)."""
    import hashlib

    from fake_openai import SPEECH_VOICES, speech_audio

    text = "High water, and the boats still out."
    return hashlib.sha256(speech_audio(len(text) * 0.05, SPEECH_VOICES["nova"] + server.speech_shift, "wav")).hexdigest()


def test_a_server_that_now_says_a_line_differently_is_reported(write_story, speech_server, monkeypatch):
    import shutil

    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(FILM)
    lock = script.with_name("film.story.lock")
    build(script, BuildOptions(preview=True))
    pinned = lock.read_text()
    # the server changes; a new machine (no cache) asks again and is told the audio changed
    speech_server.speech_shift = 60
    shutil.rmtree(script.parent / "build")
    report = build(script, BuildOptions(preview=True))
    assert any("film.story:9: MARA's line: the server's audio changed since film.story.lock pinned it" in n
               for n in report.notes), report.notes
    assert _lock_lines(script)[0]["audio"] == speech_audio_digest(speech_server)
    # the lock from before comes back (git checkout): status says the cache holds another answer
    lock.write_text(pinned)
    status = CliRunner().invoke(main, ["status", str(script), "--preview"])
    assert status.exit_code == 0, status.output
    assert "line 2:0 speech: the server's audio changed (film.story.lock pins" in status.output
    assert "would be asked again (film.story:9)" in status.output
    assert len(speech_server.requests) == 2  # status asked nothing
    # and the build asks again rather than use audio the lock does not pin
    speech_server.speech_shift = 0
    report = build(script, BuildOptions(preview=True))
    assert len(speech_server.requests) == 3 and not any("audio changed" in n for n in report.notes)
    assert lock.read_text() == pinned


def test_voices_espeak_leaves_the_pins_alone(write_story, speech_server, monkeypatch):
    monkeypatch.setenv("STORYC_TTS_URL", speech_server.url)
    script = write_story(FILM)
    build(script, BuildOptions(preview=True))
    pinned = script.with_name("film.story.lock").read_text()
    build(script, BuildOptions(preview=True, voices="espeak"))
    assert script.with_name("film.story.lock").read_text() == pinned


def test_ctrl_c_while_a_server_speaks_leaves_no_half_line_and_no_lock(write_story, speech_server):
    import os
    import signal
    import subprocess
    import time

    speech_server.speech_delay = 30
    script = write_story(FILM)
    env = dict(os.environ, STORYC_TTS_URL=speech_server.url, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", "--preview", "film.story"],
                            cwd=script.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not speech_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert speech_server.requests, "the build never asked the server"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    speech_dir = [p for p in (script.parent / "build").rglob("speech") if p.is_dir()]
    server_wavs = [p for d in speech_dir for p in d.rglob("*.wav")
                   if json.loads(p.with_suffix(".json").read_text())["inputs"]["engine"] == "openai"]
    assert server_wavs == [] and not script.with_name("film.story.lock").exists()
    assert not [p for p in (script.parent / "build").rglob("*") if p.name.endswith(atomic.PART)]
