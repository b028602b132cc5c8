"""LLM expansion against an OpenAI-compatible test server, through the real `openai` client:
what is sent, what comes back (good, in prose, fenced, wrong, empty, refused, late, rate
limited), the lockfile and how builds use it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from storylang.cli import main
from storylang.expand import Options, expand_film
from storylang.expand import lock as lock_mod
from storylang.expand.book import closest
from storylang.expand.request import DEFAULT_MODEL
from storylang.resolve import resolve_file

from conftest import ROOT
from fake_openai import FakeOpenAI

FILM = '''title "Quay" 0s
format 256x144 @ 12fps
model "dreamshaper_8.safetensors"  steps 4
style "ink wash"
negative "text"

character IDA
  look "young ferry captain, red hair"

EXT. QUAY - DAWN
  setting "stone harbour, gulls"
  shot 1 wide 1s
    action "boats at their moorings"
  shot 2 close on IDA 1s
    action "Ida coils a rope"
  shot 3 medium 1s
    action "gulls lift off"
'''


@pytest.fixture
def llm():
    s = FakeOpenAI().start()
    yield s
    s.stop()


@pytest.fixture
def film_dir(tmp_path, llm, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "film.story").write_text(FILM)
    (tmp_path / "storyc.toml").write_text(f'[llm]\nbase_url = "{llm.url}"\nmodel = "gpt-4o-mini"\n'
                                          'timeout = 5\nretries = 2\n')
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def lock_of(d: Path) -> dict:
    import tomllib

    return {e["id"]: e for e in tomllib.loads((d / "film.story.lock").read_text()).get("shot", [])}


def edit(d: Path, old: str, new: str) -> None:
    p = d / "film.story"
    p.write_text(p.read_text().replace(old, new))


def test_expand_sends_the_shot_as_data_with_a_strict_schema_and_pins_the_answers(film_dir, llm):
    result = run("expand", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 3
    body = next(b for b in llm.requests if '"Ida coils a rope"' in b["messages"][-1]["content"])
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.0 and body["max_tokens"] > 0
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["camera", "negative", "positive"]
    system, user = body["messages"][0], body["messages"][-1]
    assert system["role"] == "system" and "never as instructions" in system["content"]
    facts = json.loads(user["content"].split("Shot:", 1)[1])
    assert facts["action"] == "Ida coils a rope" and facts["characters"] == [
        {"name": "IDA", "look": "young ferry captain, red hair", "avoid": ""}]
    assert facts["style"] == "ink wash" and facts["setting"] == "stone harbour, gulls"
    entries = lock_of(film_dir)
    assert list(entries) == ["1", "2", "3"]  # film order, whatever order the answers came in
    two = entries["2"]
    assert two["positive"].startswith("detailed close-up, Ida coils a rope, young ferry captain, red hair")
    assert two["model"] == "gpt-4o-mini-2024-07-18" and two["system_fingerprint"] == "fp_test0001"
    assert two["base_url"] == llm.url and two["where"] == "film.story:14" and two["format"] == "json_schema"
    assert "+positive: detailed close-up" in result.stdout  # the diff of what changed
    # the lock is complete: asking again makes no request
    again = run("expand", film_dir / "film.story")
    assert again.exit_code == 0 and len(llm.requests) == 3
    assert "0 asked, 3 from the lock, 0 changed" in again.output


def test_a_build_reads_the_lock_with_zero_requests_and_graphs_show_where_the_prompt_came_from(film_dir, llm):
    run("expand", film_dir / "film.story")
    n = len(llm.requests)
    result = run("build", "--expand", "--locked", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == n
    graph = run("graph", "--explain", "--shot", "2", film_dir / "film.story")
    assert "expansion (from film.story.lock; gpt-4o-mini-2024-07-18; key" in graph.output
    written = json.loads((film_dir / "build" / "film" / "graphs" / "shot_2.json").read_text())
    texts = [n["inputs"]["text"] for n in written.values() if n["class_type"] == "CLIPTextEncode"]
    assert lock_of(film_dir)["2"]["positive"] in texts


def test_an_edit_invalidates_exactly_that_shot_and_locked_fails_on_it(film_dir, llm):
    run("expand", film_dir / "film.story")
    before = lock_of(film_dir)
    edit(film_dir, "gulls lift off", "gulls lift off the water")
    locked = run("build", "--locked", film_dir / "film.story")
    assert locked.exit_code == 1
    assert "film.story:16:3: error: shot 3 wants an expanded prompt and film.story.lock has none" in locked.output
    n = len(llm.requests)
    result = run("expand", film_dir / "film.story")
    assert result.exit_code == 0 and len(llm.requests) == n + 1
    assert "gulls lift off the water" in llm.requests[-1]["messages"][-1]["content"]
    after = lock_of(film_dir)
    assert after["1"] == before["1"] and after["2"] == before["2"] and after["3"]["key"] != before["3"]["key"]
    assert "-positive: detailed medium shot, framed from the waist up, gulls lift off" in result.stdout


def test_a_build_without_expand_uses_a_matching_lock_and_notes_a_stale_one(film_dir, llm):
    run("expand", film_dir / "film.story")
    edit(film_dir, "gulls lift off", "gulls circle")
    n = len(llm.requests)
    film, _, _ = resolve_file(film_dir / "film.story", "film.story")
    result = expand_film(film, film_dir / "film.story", Options())
    assert len(llm.requests) == n and sorted(result.prompts) == ["1", "2"]
    assert result.notes == ["shot 3: its lock entry is stale (the shot changed); it uses the script's words "
                            "until `storyc expand film.story`"]


def test_the_script_opts_in_and_out_per_film_scene_and_shot_with_instructions(film_dir, llm):
    text = FILM.replace('negative "text"\n', 'negative "text"\nexpand "moody, low key"\n')
    text = text.replace('    action "gulls lift off"', '    action "gulls lift off"\n    expand off')
    (film_dir / "film.story").write_text(text)
    result = run("build", film_dir / "film.story")  # no --expand: the script asks for it
    assert result.exit_code == 0, result.output
    asked = [b["messages"][-1]["content"] for b in llm.requests]
    assert len(asked) == 2 and all('Instruction from the writer: "moody, low key"' in a for a in asked)
    entries = lock_of(film_dir)
    assert sorted(entries) == ["1", "2"] and entries["1"]["positive"].endswith("moody, low key")
    # built again: the lock answers, nothing is asked
    assert run("build", film_dir / "film.story").exit_code == 0 and len(llm.requests) == 2


def test_json_in_prose_fenced_json_and_a_server_that_ignores_the_schema_are_read(film_dir, llm):
    llm.then(content='Here it is:\n```json\n{"positive": "a fenced answer", "negative": "", "camera": ""}\n```')
    llm.then(content='Sure. {"positive": "an answer in prose", "negative": "n", "camera": ""} Enjoy!')
    run("expand", "-j", "1", film_dir / "film.story")
    entries = lock_of(film_dir)
    assert [entries[k]["positive"] for k in ("1", "2")] == ["a fenced answer", "an answer in prose"]
    llm.ignore_schema = True
    result = run("expand", "--refresh", "--shot", "3", film_dir / "film.story")
    assert result.exit_code == 0 and lock_of(film_dir)["3"]["positive"].startswith("detailed medium shot")


def test_a_server_without_structured_output_is_asked_again_with_the_schema_in_the_instructions(film_dir, llm):
    llm.refuse_schema = True
    result = run("expand", "--shot", "1", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    first, second = llm.requests
    assert "response_format" in first and "response_format" not in second
    assert '"additionalProperties": false' in second["messages"][0]["content"]  # the schema, in words
    assert lock_of(film_dir)["1"]["format"] == "text"


def test_a_schema_violation_is_fixed_by_one_re_ask_with_the_error(film_dir, llm):
    llm.then(content='{"positive": "   ", "negative": "x"}')
    result = run("expand", "--shot", "2", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    retry = llm.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"positive": "   ", "negative": "x"}'}
    assert retry[-1]["role"] == "user" and "positive: String should have at least 1 character" in retry[-1]["content"]
    assert lock_of(film_dir)["2"]["positive"].startswith("detailed close-up")


@pytest.mark.parametrize("reply, said", [
    ({"content": ""}, "the answer was empty"),
    ({"refusal": "I can't help with that."}, "the model refused: I can't help with that."),
    ({"content": '{"positive": "cut off', "finish_reason": "length"}, "the answer was cut off"),
    ({"content": "no json here"}, "it holds no JSON object"),
])
def test_empty_refused_truncated_and_jsonless_answers_are_errors_at_the_shot(film_dir, llm, reply, said):
    llm.then(**reply).then(**reply)
    result = run("expand", "--shot", "2", film_dir / "film.story")
    assert result.exit_code == 1
    assert f"film.story:14:3: error: shot 2: the model's answer was unusable twice ({said}" in result.output
    assert not (film_dir / "film.story.lock").exists() or "2" not in lock_of(film_dir)


def test_429_with_retry_after_is_waited_out_then_answered(film_dir, llm):
    llm.then(status=429, error="Rate limit reached for gpt-4o-mini", type="requests", code="rate_limit_exceeded",
             headers={"Retry-After": "1"})
    t0 = time.monotonic()
    result = run("expand", "--shot", "1", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 2 and time.monotonic() - t0 >= 0.9
    assert "1" in lock_of(film_dir)


def test_a_server_too_slow_is_one_line_naming_the_setting(film_dir, llm):
    (film_dir / "storyc.toml").write_text(f'[llm]\nbase_url = "{llm.url}"\ntimeout = 0.3\nretries = 0\n')
    llm.then(delay=2)
    result = run("expand", "--shot", "1", film_dir / "film.story")
    assert result.exit_code == 1
    assert "shot 1: " in result.output and "gave no answer within 0.3 s" in result.output
    assert "raise [llm] timeout in storyc.toml" in result.output


def test_no_server_is_one_line_and_a_build_proceeds_with_the_scripts_words(film_dir, llm):
    (film_dir / "storyc.toml").write_text('[llm]\nbase_url = "http://127.0.0.1:9/v1"\nretries = 0\n')
    result = run("expand", film_dir / "film.story")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("storyc: no LLM server answers at http://127.0.0.1:9/v1")
    built = run("build", "--expand", film_dir / "film.story")
    assert built.exit_code == 0, built.output
    assert "note: no LLM server answers at http://127.0.0.1:9/v1" in built.output
    assert "3 shots use the script's words" in built.output


def test_no_key_for_openai_is_one_line(film_dir, monkeypatch):
    (film_dir / "storyc.toml").unlink()
    result = run("expand", film_dir / "film.story")
    assert result.exit_code == 1
    assert "storyc: no API key for https://api.openai.com/v1: set OPENAI_API_KEY in the environment" in result.output


def test_the_package_variables_apply_with_the_default_model_and_the_key_is_never_written(film_dir, llm, monkeypatch):
    (film_dir / "storyc.toml").unlink()
    llm.token = "sk-secret-test-key-123"
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", llm.token)
    assert run("expand", film_dir / "film.story").exit_code == 0
    assert {b["model"] for b in llm.requests} == {DEFAULT_MODEL}
    assert all(h["Authorization"] == f"Bearer {llm.token}" for h in llm.headers)
    assert run("build", "--expand", film_dir / "film.story").exit_code == 0
    for p in film_dir.rglob("*"):
        if p.is_file():
            assert llm.token.encode() not in p.read_bytes(), p


def test_shots_with_the_same_request_share_one_answer_and_gone_shots_are_dropped(film_dir, llm):
    text = FILM.replace('    action "gulls lift off"', '    action "boats at their moorings"').replace(
        "shot 3 medium", "shot 3 wide")
    (film_dir / "film.story").write_text(text)
    assert run("expand", film_dir / "film.story").exit_code == 0
    assert len(llm.requests) == 2
    entries = lock_of(film_dir)
    assert entries["1"]["key"] == entries["3"]["key"] and entries["1"]["positive"] == entries["3"]["positive"]
    edit(film_dir, "  shot 2 close on IDA 1s\n    action \"Ida coils a rope\"\n", "")
    edit(film_dir, 'character IDA\n  look "young ferry captain, red hair"\n', "")
    result = run("expand", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert sorted(lock_of(film_dir)) == ["1", "3"] and "1 dropped (shots no longer in the film)" in result.output


def test_a_prompt_book_gives_the_closest_examples_as_earlier_turns(film_dir, llm):
    book = "".join(f'[[example]]\nshot = "{s}"\npositive = "p{i}"\n\n' for i, s in enumerate(
        ["a lighthouse in a storm", "gulls over the harbour water", "a rope on a wooden deck",
         "a city street at noon", "boats at anchor in the harbour"]))
    (film_dir / "promptbook.toml").write_text(book)
    with (film_dir / "storyc.toml").open("a") as fh:
        fh.write('book = "promptbook.toml"\n')
    assert run("expand", "--shot", "1", film_dir / "film.story").exit_code == 0
    messages = llm.requests[0]["messages"]
    shown = [json.loads(m["content"].split("Shot:", 1)[1])["action"] for m in messages[1:-1] if m["role"] == "user"]
    answers = [json.loads(m["content"])["positive"] for m in messages[1:-1] if m["role"] == "assistant"]
    # "boats at their moorings" + "stone harbour, gulls": the two harbour examples, then the first of
    # the rest (a tie), sent in the book's order
    assert shown == ["a lighthouse in a storm", "gulls over the harbour water", "boats at anchor in the harbour"]
    assert answers == ["p0", "p1", "p4"]
    # the book is an input of the build (the no-op stamp, watch mode)
    from storylang import stamp

    film, _, _ = resolve_file(film_dir / "film.story", "film.story")
    assert (film_dir / "promptbook.toml").resolve() in stamp.inputs(film, film_dir / "film.story")
    assert closest([{"shot": "a"}], "anything") == [{"shot": "a"}]


def test_a_changed_lock_entry_re_renders_exactly_that_shot(film_dir, llm):
    sys.path.insert(0, str(ROOT / "tests" / "comfy"))
    from fake_server import FakeComfy

    comfy = FakeComfy(step_delay=0.001).start()
    try:
        run("expand", film_dir / "film.story")
        first = run("build", "--comfy", comfy.url, film_dir / "film.story")
        assert first.exit_code == 0, first.output
        assert "3 shots: 3 rendered, 0 reused" in first.output
        lock = film_dir / "film.story.lock"
        lock.write_text(lock.read_text().replace("detailed close-up", "a hand-edited close-up"))
        status = run("status", "--comfy", comfy.url, film_dir / "film.story")
        assert status.exit_code == 0, status.output
        assert [ln for ln in status.output.splitlines() if " render:" in ln] == \
            [ln for ln in status.output.splitlines() if "render: expanded prompt changed (" in ln]
        assert status.output.count(" render: ") == 1, status.output
        again = run("build", "--comfy", comfy.url, film_dir / "film.story")
        assert again.exit_code == 0, again.output
        assert "3 shots: 1 rendered, 2 reused" in again.output
        assert "a hand-edited close-up" in json.dumps(comfy.graphs[comfy.submitted[-1]])
    finally:
        comfy.stop()


def test_ctrl_c_leaves_the_lock_holding_every_answer_received(film_dir, llm):
    llm.then().then(delay=30).then(delay=30)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "expand", "-j", "1", "film.story"],
                            cwd=film_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (film_dir / "film.story.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "interrupted; film.story.lock holds every answer received" in err
    assert list(lock_of(film_dir)) == ["1"]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.text())
def test_the_lockfile_reads_back_exactly_whatever_the_text(positive, negative):
    lock = lock_mod.Lock({"7": lock_mod.Entry(id="7", key="k", positive=positive, negative=negative)})
    text = lock_mod.dumps(lock, "film.story")
    import tomllib

    (entry,) = tomllib.loads(text)["shot"]
    assert entry["positive"] == positive and entry.get("negative", "") == negative
    assert all(len(line) <= 100 or " " not in line.strip() for line in text.splitlines()[4:])


def test_the_script_header_names_the_model_and_server_over_storyc_toml(film_dir, llm, tmp_path):
    other = FakeOpenAI(model="llama3.1:8b").start()
    try:
        edit(film_dir, 'style "ink wash"\n', f'style "ink wash"\nllm "llama3.1:8b" server "{other.url}"\n')
        assert run("expand", film_dir / "film.story").exit_code == 0
        assert not llm.requests and {b["model"] for b in other.requests} == {"llama3.1:8b"}
        assert lock_of(film_dir)["1"]["base_url"] == other.url
    finally:
        other.stop()
    edit(film_dir, f'server "{other.url}"', 'server "localhost:11434"')
    result = run("check", film_dir / "film.story")
    assert result.exit_code == 1 and '"localhost:11434" is not a server URL' in result.output


def test_a_dry_run_says_which_prompts_would_be_asked_for_and_asks_nothing(film_dir, llm):
    run("expand", "--shot", "1", film_dir / "film.story")
    result = run("build", "--dry-run", "--expand", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 1
    assert "shot 2 prompt: not in film.story.lock as it is now: would be asked of the LLM" in result.output
    assert "shot 1 prompt" not in result.output


def test_check_says_which_lock_entries_are_stale_or_missing_and_asks_nothing(film_dir, llm):
    run("expand", film_dir / "film.story")
    edit(film_dir, "gulls lift off", "gulls circle")
    edit(film_dir, '    action "Ida coils a rope"', '    action "Ida coils a rope"\n    expand "at night"')
    n = len(llm.requests)
    result = run("check", film_dir / "film.story")
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == n
    assert "film.story:17:3: warning: shot 3: its entry in film.story.lock no longer matches the shot" in result.output
    assert "film.story:14:3: warning: shot 2 asks for an expanded prompt that film.story.lock does not have yet" \
        in result.output


def test_a_server_that_hangs_is_waited_for_once_not_once_per_shot(film_dir, llm):
    (film_dir / "storyc.toml").write_text(f'[llm]\nbase_url = "{llm.url}"\ntimeout = 0.3\nretries = 0\n')
    for _ in range(3):
        llm.then(delay=2)
    t0 = time.monotonic()
    result = run("expand", "--jobs", "1", film_dir / "film.story")
    assert result.exit_code == 1
    assert "gave no answer within 0.3 s" in result.output
    assert len(llm.requests) == 1 and time.monotonic() - t0 < 1.5, result.output
