"""Keys go only to servers the user named or allowed; a script or its project file gets none sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostile import no_traceback, run
from hostile_listener import Listener

TOKEN = "s3cret-comfy-token-0123"
KEY = "sk-secret-openai-key-4567"
SCRIPT = ('format 384x216 @ 24fps\nmodel "dreamshaper_8.safetensors"\n{llm}'
          'EXT. A - DAY\n  shot 1 wide 1s\n    action "boats"\n')


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("STORYC_COMFY_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name in ("STORYC_COMFY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def user_trusts(url: str) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "storyc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[trust]\nservers = ["{url}"]\n')


def test_a_comfy_server_named_only_by_storyc_toml_gets_no_token(write_story):
    with Listener() as evil:
        path = write_story(SCRIPT.format(llm=""), **{"storyc.toml": f'[comfy]\nservers = ["{evil.url}"]\n'})
        result = run("build", path, "--preview")
        no_traceback(result)
        assert result.exit_code == 1
        assert b"GET /" in evil.received  # it was asked, without the key
        assert TOKEN.encode() not in evil.received
        assert "comes from storyc.toml, not from you: it gets no STORYC_COMFY_TOKEN" in result.output


@pytest.mark.parametrize("how", ["flag", "env", "user config"])
def test_a_comfy_server_the_user_named_gets_the_token(write_story, monkeypatch, how):
    with Listener() as mine:
        toml = f'[comfy]\nservers = ["{mine.url}"]\n'
        path = write_story(SCRIPT.format(llm=""), **{"storyc.toml": toml})
        args = ()
        if how == "flag":
            args = ("--comfy", mine.url)
        elif how == "env":
            monkeypatch.setenv("STORYC_COMFY", mine.url)
        else:
            user_trusts(mine.url)
        run("build", path, "--preview", *args)
        assert f"Bearer {TOKEN}".encode() in mine.received


def test_an_llm_server_named_by_the_script_gets_no_key(write_story):
    with Listener() as evil:
        path = write_story(SCRIPT.format(llm=f'llm "m" server "{evil.url}/v1"\n'))
        result = run("build", path, "--preview", "--expand")
        no_traceback(result)
        assert b"POST /v1/chat/completions" in evil.received
        assert KEY.encode() not in evil.received
        assert "is named by the script or storyc.toml, not by you: it gets no OPENAI_API_KEY" in result.output


def test_an_llm_server_named_by_storyc_toml_gets_no_key_and_cannot_pick_another_variable(write_story, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-999")
    with Listener() as evil:
        toml = f'[llm]\nbase_url = "{evil.url}/v1"\nkey_env = "AWS_SECRET_ACCESS_KEY"\nretries = 0\n'
        path = write_story(SCRIPT.format(llm=""), **{"storyc.toml": toml})
        run("build", path, "--preview", "--expand")
        assert b"POST /v1/chat/completions" in evil.received
        assert KEY.encode() not in evil.received and b"aws-secret-999" not in evil.received


@pytest.mark.parametrize("how", ["OPENAI_BASE_URL", "user config"])
def test_an_llm_server_the_user_named_gets_the_key(write_story, monkeypatch, how):
    with Listener() as mine:
        path = write_story(SCRIPT.format(llm=f'llm "m" server "{mine.url}/v1"\n'))
        if how == "OPENAI_BASE_URL":
            monkeypatch.setenv("OPENAI_BASE_URL", mine.url + "/v1")
        else:
            user_trusts(mine.url + "/v1")
        run("build", path, "--preview", "--expand")
        assert f"Bearer {KEY}".encode() in mine.received


def test_no_key_is_written_anywhere_in_the_project(write_story):
    with Listener() as evil:
        path = write_story(SCRIPT.format(llm=f'llm "m" server "{evil.url}/v1"\n'))
        run("build", path, "--preview", "--expand")
        for p in path.parent.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert KEY.encode() not in data and TOKEN.encode() not in data, p
