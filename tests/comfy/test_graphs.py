"""Every shot compiles to a graph a real server accepts: valid, deterministic, text carried as data."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storylang.comfy.graphs import compile_film, graph_json, template_env, compile_shot
from storylang.comfy.prompts import assemble_prompt
from storylang.comfy.schema import load_object_info, snapshot, validate
from storylang.film import Character, Film, RenderSettings, Scene, Shot, Voice, Where
from storylang.resolve import resolve_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEMPLATES = ("still", "hires", "motion", "keyframes", "restyle")


def with_template(film, name):
    """Every shot that can take template `name` (its inputs and its model family's kind), on it."""
    from storylang.families import families

    shots = []
    for s in film.shots:
        if name == "keyframes" and not s.keyframes or name == "restyle" and not s.source:
            continue
        family = families()[s.render.family]
        if (family.kind == "video") != (name in ("motion", "keyframes")) and not (
                name == "motion" and family.graph.motion_model):
            continue
        shots.append(s.model_copy(update={"render": s.render.model_copy(update={"template": name})}))
    return film.model_copy(update={"shots": tuple(shots)})


@pytest.mark.parametrize("snapshot_name", ["core-0.3.64", "full-0.3.64", "core-0.33", "full-0.33"])
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("example", ["lighthouse", "harbour", "everything"])
def test_every_example_shot_validates_with_every_template(example, template, snapshot_name):
    path = EXAMPLES / f"{example}.story"
    film, diags, _ = resolve_file(path)
    film = with_template(film, template)
    info = load_object_info(snapshot_name)
    for sg in compile_film(film, path.parent, info):
        errors = [d for d in sg.diagnostics if d.severity == "error"]
        if template == "motion" and sg.shot.render.family == "sd1.5" and snapshot_name.startswith("core"):
            # AnimateDiff on a stock server: the only problem is the packs it needs, named
            assert errors and all(d.code == "graph-missing_node_type" and "install the custom node pack" in d.hint
                                  for d in errors)
            continue
        assert not [d.message for d in errors]
        assert sg.graph and validate(sg.graph, info) == []


def test_the_same_film_gives_byte_identical_graphs():
    path = EXAMPLES / "everything.story"
    texts = []
    for _ in range(2):
        film, _, _ = resolve_file(path)
        texts.append([graph_json(sg.graph) for sg in compile_film(film, path.parent, snapshot("full"))])
    assert texts[0] == texts[1]


def test_a_still_graph_has_the_practitioners_chain():
    path = EXAMPLES / "everything.story"
    film, _, _ = resolve_file(path)
    sg = next(g for g in compile_film(film, path.parent, snapshot("full")) if g.shot.id == "3")
    g = sg.graph
    assert g["lora1"]["inputs"]["model"] == ["checkpoint", 0]
    assert g["lora2"]["inputs"]["lora_name"] == "mara_v2.safetensors"
    assert g["clip_skip"]["inputs"]["stop_at_clip_layer"] == -2
    assert g["ipadapter1"]["inputs"]["image"] == ["reference1", 0]
    assert g["reference1"]["inputs"]["image"].startswith("storylang/")
    assert g["sampler"]["inputs"]["model"] == ["ipadapter1", 0]
    assert g["sampler"]["inputs"]["seed"] == sg.shot.render.seed
    assert g["latent"]["inputs"] == {"width": 1280, "height": 720, "batch_size": 1}
    assert [i.file for i in sg.inputs] == ["assets/mara_reference.png"]


def test_motion_maps_the_camera_to_motion_loras_and_says_what_it_cannot_do():
    path = EXAMPLES / "lighthouse.story"
    film, _, _ = resolve_file(path)
    film = with_template(film, "motion")
    graphs = {sg.shot.id: sg for sg in compile_film(film, path.parent, snapshot("full"))}
    assert graphs["1"].graph["motion_lora1"]["inputs"]["name"] == "v2_lora_ZoomIn.ckpt"
    assert graphs["1"].graph["interpolate"]["inputs"]["multiplier"] == 3
    assert graphs["1"].graph["latent"]["inputs"]["batch_size"] == 120 // 3 + 1
    warning = [d.message for d in graphs["3"].diagnostics if d.severity == "warning"]
    assert warning and "cannot orbit left; closest: pan left" in warning[0]


def test_motion_on_a_video_family_is_its_text_to_video_with_camera_words(tmp_path):
    (tmp_path / "f.story").write_text('model "wan2.1_t2v_1.3B_fp16.safetensors"\nformat 832x480 @ 24fps\n'
                                      'EXT. A - DAY\n  shot 1 wide 2s\n    camera push in slow\n')
    film, diags, _ = resolve_file(tmp_path / "f.story")
    assert film.shots[0].render.template == "motion" and film.shots[0].render.family == "wan2.1"
    sg = compile_film(film, tmp_path, snapshot("core"))[0]
    assert sg.graph["latent"]["class_type"] == "EmptyHunyuanLatentVideo"
    assert sg.graph["latent"]["inputs"]["length"] == 33  # 2 s at Wan's 16 fps: 32 frames, as 4n+1
    assert "slow push in" in sg.graph["positive"]["inputs"]["text"]
    assert sg.graph["sampler"]["inputs"]["sampler_name"] == "uni_pc"  # the family's default


def _film(action="a", style="", look="", negative=""):
    where = Where(file="f.story", line=1)
    mara = Character(name="MARA", look=look, seed=1, voice=Voice(id="en-us"), where=where)
    render = RenderSettings(model="m.safetensors", style=style, negative=negative)
    shot = Shot(id="1", number="1", scene=0, framing="close", cast=("MARA",), frames=24, action=action,
                render=render, where=where)
    scene = Scene(index=0, heading="EXT. A - DAY", interior="EXT", place="A", time="DAY", where=where)
    return Film(characters=(mara,), scenes=(scene,), shots=(shot,), script="f.story")


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=TEXT, style=TEXT, look=TEXT, negative=TEXT)
def test_any_unicode_text_reaches_the_graph_exactly(tmp_path, action, style, look, negative):
    film = _film(action, style, look, negative)
    sg = compile_shot(film, film.shots[0], tmp_path, template_env(None), snapshot("full"))
    assert sg.graph is not None, sg.diagnostics
    positive = sg.graph["positive"]["inputs"]["text"]
    assert positive == assemble_prompt(film, film.shots[0]).positive
    for text in (action, style, look):
        if text.strip():
            assert text.strip() in positive
    if negative.strip():
        assert sg.graph["negative"]["inputs"]["text"] == negative.strip()


def test_jinja_syntax_in_a_writers_text_stays_text(tmp_path):
    film = _film(action='{{ 7*7 }} {% raw %} "quoted" \\ back')
    sg = compile_shot(film, film.shots[0], tmp_path, template_env(None), snapshot("full"))
    assert sg.graph["positive"]["inputs"]["text"].startswith('{{ 7*7 }} {% raw %} "quoted" \\ back')


def test_project_templates_shadow_built_ins_and_run_sandboxed(tmp_path):
    (tmp_path / "templates" / "graphs").mkdir(parents=True)
    (tmp_path / "templates" / "graphs" / "still.json.j2").write_text(
        '{"save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": {{ output_prefix }}}},'
        ' "decode": {"class_type": "EmptyImage", "inputs": {"width": {{ film.width }}, "height": 64, "batch_size": 1, "color": 0}}}')
    film = _film()
    sg = compile_shot(film, film.shots[0], tmp_path, template_env(tmp_path / "templates"), snapshot("full"))
    assert sg.graph["decode"]["inputs"]["width"] == 1280 and not sg.diagnostics
    (tmp_path / "templates" / "graphs" / "still.json.j2").write_text('{"x": {{ "".__class__.__mro__ }}}')
    sg = compile_shot(film, film.shots[0], tmp_path, template_env(tmp_path / "templates"), snapshot("full"))
    assert sg.graph is None and sg.diagnostics[0].code == "template-error"


def test_unknown_template_is_named_with_a_suggestion(tmp_path):
    film = _film()
    shot = film.shots[0].model_copy(update={"render": film.shots[0].render.model_copy(update={"template": "stil"})})
    sg = compile_shot(film, shot, tmp_path, template_env(None), snapshot("full"))
    assert sg.diagnostics[0].code == "unknown-template" and 'did you mean "still"' in sg.diagnostics[0].hint


def test_a_memo_renders_again_only_the_shots_an_edit_changed(tmp_path, monkeypatch):
    """The language server's dear check keeps a GraphMemo: the same diagnostics as without one,
    and after an edit only the edited shot's template is rendered and validated again."""
    import shutil

    import storylang.comfy.graphs as graphs
    from storylang.resources import templates_dir

    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    path = tmp_path / "ex" / "harbour.story"
    text = path.read_text()
    project = tmp_path / "ex" / "templates" / "graphs"
    project.mkdir(parents=True, exist_ok=True)
    shipped = (templates_dir() / "graphs" / "still.json.j2").read_text()
    # a project's still template with a node the server lacks: an error on every shot
    (project / "still.json.j2").write_text(shipped.replace('"SaveImage"', '"SaveImageX"'))
    info = load_object_info("full")
    validated = []
    real = graphs.validate
    monkeypatch.setattr(graphs, "validate", lambda graph, i: validated.append(1) or real(graph, i))

    def diagnostics(memo):
        film, _, _ = resolve_file(path)
        return [d.model_dump() for sg in compile_film(film, path.parent, info, memo=memo) for d in sg.diagnostics]

    memo = graphs.GraphMemo()
    plain = diagnostics(None)
    shots = len(validated)
    assert sum(d["code"] == "graph-missing_node_type" for d in plain) == shots > 1
    assert diagnostics(memo) == plain
    validated.clear()
    assert diagnostics(memo) == plain and validated == []  # nothing changed: nothing rendered again
    action = text.index('action "') + len('action "')
    path.write_text(text[:action] + "rain, " + text[action:])
    assert diagnostics(memo) == diagnostics(None)
    assert len(validated) == 1 + shots  # the edited shot's graph (and every one again without the memo)
    validated.clear()
    (project / "still.json.j2").write_text(shipped)  # a template changed: everything again
    assert not [d for d in diagnostics(memo) if d["code"] == "graph-missing_node_type"]
    assert len(validated) == shots
