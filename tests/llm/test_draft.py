"""`storyc draft`: prose → a checked, formatted `.story` script, through the real `openai` client
against the test server's canned outlines."""

import json

import pytest
from click.testing import CliRunner

from storylang.cli import main
from storylang.draft import Outline, name_of, write_story

from fake_openai import FakeOpenAI


def shot(framing="wide", cast=(), camera="static", seconds=3, action="", narration="", dialogue=(),
         transition="cut"):
    return {"framing": framing, "cast": list(cast), "camera": camera, "seconds": seconds, "action": action,
            "narration": narration, "dialogue": [dict(speaker=s, parenthetical=p, text=t) for s, p, t in dialogue],
            "transition": transition}


def scene(interior, place, time, shots, setting="", lighting="", mood="", music="", music_file=""):
    return {"interior": interior, "place": place, "time": time, "setting": setting, "lighting": lighting,
            "mood": mood, "music": music, "music_file": music_file, "shots": shots}


def character(name, look, voice="female", age="adult"):
    return {"name": name, "look": look, "voice": voice, "age": age}


def outline(title, language, characters, scenes, style="ink and watercolor"):
    return {"title": title, "author": "Anon", "language": language, "style": style, "narrator": "female",
            "characters": characters, "scenes": scenes}


SHORT = outline("The Key", "en-us", [character("Nell", "girl of ten, red coat, yellow boots", age="child")], [
    scene("EXT", "Garden", "Day", [
        shot("wide", ["Nell"], "push in slow", 4, "Nell digs under the apple tree",
             narration="Nell found the key on a Tuesday."),
        shot("close", ["Nell"], "static", 3, "a rusty key in her palm", dialogue=[("Nell", "whispering", "Mine.")]),
    ], setting="overgrown garden, apple tree", music="a music box, slow")])

FRENCH = outline("Le Phare", "fr", [character("José", "vieux gardien, barbe grise, ciré jaune", "male", "old"),
                                    character("Élise", "jeune femme, cheveux noirs, manteau bleu")], [
    scene("EXT", "Falaise du phare", "Nuit", [
        shot("extreme wide", [], "pan right slow", 5, "le faisceau balaie la mer",
             narration="Chaque nuit, José montait l'escalier.", transition="dissolve"),
        shot("medium", ["José", "Élise"], "orbit left slow", 4, "ils regardent la tempête",
             dialogue=[("Élise", "", "Tu ne dors jamais ?"), ("José", "doucement", "Pas quand la mer parle.")]),
    ], setting="phare blanc sur rochers noirs", lighting="clair de lune froid"),
    scene("INT", "Salle de la lampe", "Nuit", [
        shot("close", ["José"], "push in slow", 3, "il éteint la lampe", narration="Et la mer se tut."),
    ]),
])

LONG = outline("Harbour Days", "en-gb", [character("Ida", "ferry captain, short red hair, navy peacoat"),
                                         character("Tomas", "old fisherman, white beard", "male", "old")], [
    scene(kind, f"Place {i}", "Dusk", [
        shot(["wide", "medium", "close", "over the shoulder"][j % 4], ["Ida"] if j % 2 else ["Ida", "Tomas"],
             ["static", "pan left slow", "push in slow", "crane up fast"][j % 4], 3 + j % 3,
             f"moment {i}.{j} on the water", dialogue=[("Tomas", "", f"Line {i}.{j}.")] if j % 3 == 0 else [])
        for j in range(5)])
    for i, kind in enumerate(["EXT", "INT", "EXT", "EST", "INT/EXT"])])

MISTAKES = outline("The Key", "en-us", [character("Nell", "girl of ten, red coat", age="child")], [
    scene("EXT", "Garden", "Day", [
        shot("closeup shot", ["Nell"], "dolly in slow", 3, "Nell digs"),
        shot("wide", ["Nell"], "static", 3, "she looks up", dialogue=[("MOTHER", "", "Nell! Dinner!")]),
    ])])


@pytest.fixture
def llm(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    s = FakeOpenAI().start()
    (tmp_path / "storyc.toml").write_text(f'[llm]\nbase_url = "{s.url}"\nmodel = "gpt-4o-mini"\ntimeout = 10\n')
    yield s
    s.stop()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def draft_of(tmp_path, llm, prose: str, *answers, extra=()):
    key = prose.split()[0]
    llm.outline(key, *answers)
    (tmp_path / "story.txt").write_text(prose, encoding="utf-8")
    out = tmp_path / "film.story"
    result = run("draft", tmp_path / "story.txt", "-o", out, *extra)
    return result, out


@pytest.mark.parametrize("prose, answer, scenes, shots", [
    ("Nell found a key. It opened nothing, until it did.", SHORT, 1, 2),
    ("Chaque nuit, José montait l'escalier du phare. " * 20, FRENCH, 2, 3),
    ("Ida ran the last ferry. " * 400, LONG, 5, 25),
])
def test_prose_of_any_length_and_language_becomes_a_script_that_checks_and_is_formatted(
        tmp_path, llm, prose, answer, scenes, shots):
    result, out = draft_of(tmp_path, llm, prose, answer)
    assert result.exit_code == 0, result.output
    assert f"{scenes} scene" in result.output and f"{shots} shots" in result.output
    assert run("check", out).exit_code == 0
    assert run("fmt", "--check", out).exit_code == 0
    body = llm.requests[0]
    assert body["response_format"]["json_schema"]["name"] == "film_outline"
    assert json.loads(body["messages"][1]["content"].split("The prose:\n", 1)[1]) == prose  # the prose as data


def test_the_script_carries_the_outline(tmp_path, llm):
    result, out = draft_of(tmp_path, llm, "Chaque nuit, José montait.", FRENCH, extra=["--style", "gouache"])
    text = out.read_text()
    assert 'style "gouache"' in text
    assert "character JOSE\n" in text and 'voice "fr+m1" rate 140 pitch 30' in text
    assert "EXT. FALAISE DU PHARE - NUIT" in text and 'narrate "Chaque nuit, José montait l\'escalier."' in text
    assert "ELISE: Tu ne dors jamais ?" in text and "JOSE (doucement): Pas quand la mer parle." in text
    assert "  > dissolve 0.5s" in text and "camera orbit left slow" in text
    assert 'Make about' not in llm.requests[0]["messages"][1]["content"]


def test_an_outline_with_mistakes_is_repaired_through_the_front_ends_errors(tmp_path, llm):
    result, out = draft_of(tmp_path, llm, "Nell found a key.", MISTAKES, SHORT)
    assert result.exit_code == 0, result.output
    assert "outline asked 2 times" in result.output
    feedback = llm.requests[1]["messages"][-1]["content"]
    assert feedback.startswith("The script made from that outline has these problems:")
    assert 'unknown framing "shot" (did you mean "two shot"?); the line reads: shot 1 closeup shot on NELL 3s' \
        in feedback
    assert "MOTHER" in feedback  # the speaker nobody declared
    assert llm.requests[1]["messages"][-2]["role"] == "assistant"
    assert run("check", out).exit_code == 0


def test_an_outline_never_repaired_is_one_line_and_nothing_is_written(tmp_path, llm):
    result, out = draft_of(tmp_path, llm, "Nell found a key.", MISTAKES)
    assert result.exit_code == 1 and not out.exists()
    assert "storyc: draft failed: the model's outline still has problems after 4 tries" in result.output
    assert len(llm.requests) == 4
    assert not list(tmp_path.glob(".film.draft-*"))


def test_an_existing_script_is_not_replaced_without_force(tmp_path, llm):
    (tmp_path / "film.story").write_text("// mine\n")
    result, out = draft_of(tmp_path, llm, "Nell found a key.", SHORT)
    assert result.exit_code == 1 and out.read_text() == "// mine\n"
    assert run("draft", tmp_path / "story.txt", "-o", out, "--force").exit_code == 0


def test_model_text_never_becomes_syntax():
    evil = outline('T" \nshot 99 wide', "en-us", [character('X"\nEXT. NOWHERE', "a\nb \"c\"")], [
        scene("EXT", "A - B\n> fade", "NIGHT\nshot 7", [
            shot("wide\n    narrate \"x\"", ['X"\nEXT. NOWHERE'], "push in slow\ncamera shake", 2,
                 'act"\n    action "y', dialogue=[('X"\nEXT. NOWHERE', "(a)(b", "hi\nshot 5 wide")])])])
    text = write_story(Outline.model_validate(evil), None, "s.txt", "m")
    from storylang.syntax.parse import parse_text

    tree, diags = parse_text(text, "x.story")
    assert tree is not None
    assert sum(1 for line in text.splitlines() if line.strip().startswith("shot ")) == 1
    assert name_of("José") == "JOSE" and name_of("Øyvind the 2nd") == "YVIND THE"


def test_music_offered_in_a_folder_becomes_real_cues(tmp_path, llm):
    import copy

    from conftest import tiny_wav

    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "music box.wav").write_bytes(tiny_wav(4))
    answer = copy.deepcopy(SHORT)
    answer["scenes"][0]["music_file"] = "music/music box.wav"
    result, out = draft_of(tmp_path, llm, "Nell found a key.", answer, extra=["--music", tmp_path / "music"])
    assert result.exit_code == 0, result.output
    assert 'music "music/music box.wav" volume -14dB fade in 2s fade out 2s' in out.read_text()
    assert "Music files the film may use" in llm.requests[0]["messages"][0]["content"]
    assert "music/music box.wav" in llm.requests[0]["messages"][0]["content"]
    assert run("check", out).exit_code == 0
    # a file the model made up is not a cue: it stays a note
    answer["scenes"][0]["music_file"] = "music/nothing.ogg"
    result, out = draft_of(tmp_path, llm, "Nell found a key.", answer, extra=["--music", tmp_path / "music", "--force"])
    assert result.exit_code == 0 and 'note "music: a music box, slow"' in out.read_text()
