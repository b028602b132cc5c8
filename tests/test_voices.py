"""Voice engines: `voice "nova" engine openai` speaks a character's lines on a server of the OpenAI
speech API (the test server answers with real audio made by ffmpeg), the narrator stays on
espeak-ng, and timing, subtitles and the cache work on the server's real samples."""

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from storylang import tts
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
