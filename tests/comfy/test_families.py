"""Model families as data: every family's graphs valid on today's ComfyUI, found by file name or
named, with their defaults, frame rules and mistakes reported at the line."""

import json
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from storylang.cli import main
from storylang.families import families
from storylang.comfy.graphs import compile_film
from storylang.comfy.schema import load_object_info
from storylang.resolve import resolve_file

from fake_server import FakeComfy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# a model file of each shipped family, as the families' own workflows name them
FILES = {"sd1.5": "dreamshaper_8.safetensors", "sdxl": "sd_xl_base_1.0.safetensors",
         "flux1": "flux1-dev-fp8.safetensors", "flux1-schnell": "flux1-schnell.safetensors",
         "flux2": "flux2_dev_fp8mixed.safetensors", "qwen-image": "qwen_image_fp8_e4m3fn.safetensors",
         "wan2.1": "wan2.1_t2v_1.3B_fp16.safetensors", "wan2.2": "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
         "wan2.2-5b": "wan2.2_ti2v_5B_fp16.safetensors", "ltx2": "ltx-2-19b-dev-fp8.safetensors",
         "hunyuan1.5": "hunyuanvideo1.5_720p_t2v_fp16.safetensors",
         "wan2.2-s2v": "wan2.2_s2v_14B_fp8_scaled.safetensors",
         "flux1-kontext": "flux1-dev-kontext_fp8_scaled.safetensors",
         "qwen-image-edit": "qwen_image_edit_2509_fp8_e4m3fn.safetensors"}
# the templates each kind of family takes (keyframes: the families that do first and last frame)
TEMPLATES = {"image": ("still", "hires", "motion"), "video": ("motion", "keyframes")}
ON_0_3_64 = {"sd1.5", "sdxl", "flux1", "flux1-schnell", "qwen-image", "wan2.1", "wan2.2", "wan2.2-5b", "wan2.2-s2v",
             "flux1-kontext", "qwen-image-edit"}  # docs/graphs.md


def _film(tmp_path, family: str, template: str) -> Path:
    keyframes = '    keyframes "dawn.png" to "morning.png"\n' if template == "keyframes" else ""
    for name in ("dawn.png", "morning.png", "mara_reference.png"):
        (tmp_path / name).write_bytes((EXAMPLES / "assets" / name).read_bytes())
    path = tmp_path / f"{family}-{template}.story"
    if template == "lipsync":  # a character in frame who speaks, with a picture of her
        path.write_text(f'format 1280x720 @ 24fps\nlipsync "{FILES[family]}"\ncharacter MARA\n  voice "en-us+f3"\n'
                        '  reference "mara_reference.png"\nEXT. SEA - DAWN\n  shot 1 close on MARA 3s\n'
                        '    MARA: High water at six.\n')
        return path
    path.write_text(f'format 1280x720 @ 24fps\nmodel "{FILES[family]}"\ntemplate {template}\n'
                    f'EXT. SEA - DAWN\n  shot 1 wide 3s\n    camera push in slow\n    action "waves on rocks"\n{keyframes}')
    return path


def _cases():
    for name, family in sorted(families().items()):
        if family.video and family.video.s2v:
            yield name, "lipsync"  # a sound-to-video family makes speaking shots only
            continue
        for template in TEMPLATES[family.kind]:
            if template == "keyframes" and not (family.video and family.video.first_last):
                continue
            if template == "motion" and family.kind == "image" and not family.graph.motion_model:
                continue
            yield name, template


def test_every_shipped_family_has_a_file_here_and_is_found_by_its_name():
    known = families()
    assert set(FILES) == set(known)
    for name, model in FILES.items():
        if name == "wan2.2-s2v":
            continue  # named by `lipsync`, and found the same way (test_a_speaking_shot_...)
        film, diags, _ = resolve_file(_film_text(model))
        assert film.shots[0].render.family == name, model
        assert film.shots[0].render.family_origin == ("assumed" if name == "sd1.5" else "file name")


def _film_text(model: str, extra: str = "") -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp())
    (d / "f.story").write_text(f'model "{model}"{extra}\nEXT. A - DAY\n  shot 1 wide 2s\n')
    return d / "f.story"


@pytest.mark.parametrize("family, template", list(_cases()))
def test_every_family_and_template_is_valid_on_todays_comfyui(tmp_path, family, template):
    path = _film(tmp_path, family, template)
    film, diags, _ = resolve_file(path)
    assert not [d for d in diags if d.severity == "error"]
    timing = None
    if template == "lipsync":
        from storylang.check import check_film

        timing = check_film(path, graphs=False).timing  # the lines' times: the dialogue it is synced to
    # AnimateDiff (motion on an image family) is a custom node pack: the full snapshot has it
    info = load_object_info("full-0.33" if template == "motion" and families()[family].kind == "image" else "core-0.33")
    (sg,) = compile_film(film, tmp_path, info, timing=timing)
    assert not [d.message for d in sg.diagnostics if d.severity == "error"]
    assert sg.graph
    # on 0.3.64 the older families are valid; the newer ones need nodes it does not have, and say so
    old = load_object_info("full-0.3.64")
    (sg_old,) = compile_film(film, tmp_path, old, timing=timing)
    codes = {d.code for d in sg_old.diagnostics if d.severity == "error"}
    if family in ON_0_3_64:
        assert not codes, [d.message for d in sg_old.diagnostics]
    else:
        assert codes <= {"graph-missing_node_type", "graph-value_not_in_list"} and codes


def test_a_family_brings_its_loaders_defaults_and_frame_rule(tmp_path):
    film, _, _ = resolve_file(_film(tmp_path, "ltx2", "motion"))
    r = film.shots[0].render
    assert (r.sampler, r.scheduler, r.steps, r.cfg, r.template) == ("euler", "simple", 20, 4.0, "motion")
    (sg,) = compile_film(film, tmp_path, load_object_info("core-0.33"))
    g = sg.graph
    assert g["latent"]["class_type"] == "EmptyLTXVLatentVideo"
    assert g["latent"]["inputs"]["length"] == 73  # 3 s at LTX's 24 fps: 72 frames, as 8n+1
    assert (g["latent"]["inputs"]["width"], g["latent"]["inputs"]["height"]) == (1280, 704)  # multiples of 32
    assert g["text_encoder"]["class_type"] == "LTXAVTextEncoderLoader"
    assert g["video"]["inputs"]["fps"] == 24
    # Wan 2.2 14B: the low-noise expert takes the second half of the steps
    film, _, _ = resolve_file(_film(tmp_path, "wan2.2", "motion"))
    (sg,) = compile_film(film, tmp_path, load_object_info("core-0.33"))
    g = sg.graph
    assert g["diffusion_model_2"]["inputs"]["unet_name"] == "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"
    assert g["sampler_high"]["inputs"]["end_at_step"] == g["sampler"]["inputs"]["start_at_step"] == 10
    assert g["latent"]["inputs"]["length"] == 49  # 3 s at 16 fps
    assert "slow push in" in g["positive"]["inputs"]["text"]  # a video family hears the camera in words
    assert families()["wan2.2"].frames(Fraction(4)) == 65


def test_what_the_script_sets_wins_over_the_familys_defaults(tmp_path):
    path = _film_text("flux1-dev-fp8.safetensors", '\nsteps 30  encoder "clip_l.safetensors" "t5xxl_fp16.safetensors"')
    film, _, _ = resolve_file(path)
    r = film.shots[0].render
    assert (r.steps, r.cfg, r.from_family) == (30, 1.0, ("cfg", "sampler", "scheduler", "template"))
    (sg,) = compile_film(film, path.parent, load_object_info("core-0.33"))
    assert sg.graph["text_encoder"]["inputs"]["clip_name2"] == "t5xxl_fp16.safetensors"
    result = CliRunner().invoke(main, ["graph", str(path), "--explain", "-o", str(path.parent / "g")])
    assert "family flux1: FLUX.1 dev (by its file name)" in result.output
    assert "from the family: cfg 1, sampler euler, scheduler simple, template still" in result.output
    assert "text encoders: clip_l.safetensors, t5xxl_fp16.safetensors (the script)" in result.output


def test_a_family_named_after_the_model_wins_over_its_name_and_a_wrong_one_is_an_error_at_the_word(tmp_path):
    film, _, _ = resolve_file(_film_text("my_finetune.safetensors", " sdxl"))
    assert (film.shots[0].render.family, film.shots[0].render.family_origin) == ("sdxl", "named")
    path = _film_text("my_finetune.safetensors", " flux3")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert 'f.story:1:33: error: "flux3" is not a model family' in result.output
    assert 'did you mean "flux1"' in result.output or 'did you mean "flux2"' in result.output


@pytest.mark.parametrize("extra, message", [
    ("\ntemplate still", "Wan 2.2 14B makes video, and still makes a picture"),
    ('\nencoder "umt5.safetensors" "clip_l.safetensors"', "Wan 2.2 14B takes 1 text encoder, not 2"),
])
def test_a_template_or_encoders_the_family_cannot_take_are_errors_at_the_shot(tmp_path, extra, message):
    path = _film_text(FILES["wan2.2"], extra)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and message in result.output, result.output


def test_check_names_each_models_family(tmp_path):
    result = CliRunner().invoke(main, ["check", str(EXAMPLES / "families.story")])
    assert result.exit_code == 0, result.output
    lines = [ln.strip() for ln in result.output.splitlines() if ln.startswith("  ")]
    assert "flux1-dev-fp8.safetensors: FLUX.1 dev (family flux1, by its file name); shot 1" in lines
    assert "juggernautXL_v9.safetensors: Stable Diffusion XL (family sdxl, named in the script); shot 4" in lines
    assert "chroma-unlocked-v50.safetensors: Chroma (family chroma, by its file name); shot 10" in lines
    assert "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors: Wan 2.2 14B (family wan2.2, by its file name); shots 8A, 9" in lines
    assert "wan2.2_s2v_14B_fp8_scaled.safetensors: Wan 2.2 S2V (family wan2.2-s2v, by its file name); shot 3A" in lines
    assert len(lines) == 11


def test_a_project_adds_a_family_with_a_data_file_alone(tmp_path):
    # the examples' own family (docs/graphs.md): Chroma, with no change to code or templates
    (tmp_path / "templates" / "families").mkdir(parents=True)
    (tmp_path / "templates" / "families" / "chroma.toml").write_text(
        (EXAMPLES / "templates" / "families" / "chroma.toml").read_text())
    (tmp_path / "f.story").write_text('model "chroma-unlocked-v50.safetensors"\nEXT. A - DAY\n  shot 1 wide 2s\n')
    film, diags, _ = resolve_file(tmp_path / "f.story")
    assert film.shots[0].render.family == "chroma" and film.shots[0].render.cfg == 4.0
    (sg,) = compile_film(film, tmp_path, load_object_info("core-0.33"))
    assert not [d.message for d in sg.diagnostics if d.severity == "error"]
    assert sg.graph["text_encoder"]["inputs"] == {"clip_name": "t5xxl_fp8_e4m3fn.safetensors", "type": "chroma"}
    # a broken family file is one error naming it
    (tmp_path / "templates" / "families" / "broken.toml").write_text('title = "x"\nkind = "sound"\n')
    result = CliRunner().invoke(main, ["check", str(tmp_path / "f.story")])
    assert result.exit_code == 1 and "model family broken.toml: kind:" in result.output


def test_todays_server_renders_a_film_that_mixes_families(tmp_path):
    import shutil

    from storylang.build import build

    from media import count_frames
    from test_render import comfy

    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    server = FakeComfy(version="0.33.0").start()
    try:
        report = build(tmp_path / "ex" / "families.story", comfy(server, preview=True))
        assert not report.failures, report.failures
        timeline = json.loads(report.timeline.read_text())
        videos = [c for c in timeline["clips"] if c["source"] == "video"]
        assert sorted(c["shot"] for c in videos) == ["3A", "5", "6", "7", "8", "8A", "9"]
        assert count_frames(report.output) == timeline["frames"]
        assert len(server.uploads) >= 2  # the keyframes' two pictures
    finally:
        server.stop()


def test_a_model_in_the_wrong_folder_for_its_family_says_where_it_is(write_story):
    server = FakeComfy(version="0.33.0").start()
    try:
        path = write_story('model "flux1-dev-fp8.safetensors" sd1.5\nEXT. A - DAY\n  shot 1 wide 2s\n')
        result = CliRunner().invoke(main, ["check", str(path), "--comfy", server.url])
        assert result.exit_code == 1
        assert "it is in ComfyUI/models/diffusion_models/" in result.output, result.output
    finally:
        server.stop()


def test_a_still_is_rendered_first_and_its_video_starts_from_it(tmp_path):
    from storylang.build import build

    from media import count_frames
    from test_render import comfy

    (tmp_path / "dawn.png").write_bytes((EXAMPLES / "assets" / "dawn.png").read_bytes())
    script = tmp_path / "film.story"
    script.write_text('format 384x216 @ 24fps\nstart still "flux1-dev-fp8.safetensors"\nEXT. SEA - DAWN\n'
                      '  shot 1 wide 2s\n    model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"\n'
                      '    action "waves on rocks"\n'
                      '  shot 2 wide 2s\n    model "ltx-2-19b-dev-fp8.safetensors"\n    start "dawn.png"\n')
    server = FakeComfy(version="0.33.0").start()
    try:
        report = build(script, comfy(server, preview=True))
        assert not report.failures, report.failures
        graphs = dict(zip(server.submitted, server.graphs_submitted()))
        kinds = [sorted(n["class_type"] for n in g.values() if n["class_type"] in ("SaveImage", "SaveVideo"))
                 for g in graphs.values()]
        assert kinds[0] == ["SaveImage"]  # the still, before the videos
        still_graph = list(graphs.values())[0]
        assert still_graph["diffusion_model"]["inputs"]["unet_name"] == "flux1-dev-fp8.safetensors"
        # the videos, in whichever order the pool ran them
        by_node = {n["class_type"]: g for g in list(graphs.values())[1:] for n in g.values()}
        video_graph = by_node["WanImageToVideo"]
        assert "LTXVImgToVideo" in by_node
        start = next(n for n in video_graph.values() if n.get("_meta", {}).get("title") == "start picture")
        assert start["inputs"]["image"] in server.uploads  # the still, uploaded before its video ran
        assert start["inputs"]["image"].startswith("storylang/still_")
        assert len(graphs) == 3
        timeline = json.loads(report.timeline.read_text())
        assert count_frames(report.output) == timeline["frames"]
        assert not [n for n in report.notes if "held" in n], report.notes  # each video covers its shot
        renders = json.loads((report.timeline.parent / "renders.json").read_text())
        assert renders["shots"]["1"]["made_first"]["1.still"]["graph"]
        # built again, nothing is rendered: the still and both videos come from the cache
        before = len(server.submitted)
        report = build(script, comfy(server, preview=True))
        assert len(server.submitted) == before
    finally:
        server.stop()


def test_image_to_video_on_every_video_family_is_valid_on_todays_comfyui(tmp_path):
    (tmp_path / "dawn.png").write_bytes((EXAMPLES / "assets" / "dawn.png").read_bytes())
    for name, family in families().items():
        if family.kind != "video" or family.video.s2v:
            continue
        path = tmp_path / f"{name}.story"
        path.write_text(f'model "{FILES[name]}"\nstart "dawn.png"\nEXT. A - DAY\n  shot 1 wide 2s\n')
        film, diags, _ = resolve_file(path)
        (sg,) = compile_film(film, tmp_path, load_object_info("core-0.33"))
        assert not [d.message for d in sg.diagnostics if d.severity == "error"], name
        assert sg.graph["latent"]["class_type"] == family.video.i2v
        assert [i.file for i in sg.inputs] == ["dawn.png"]
    # a start picture on an image model is an error at the shot; a start still must be an image model
    path = tmp_path / "bad.story"
    path.write_text('model "flux1-dev-fp8.safetensors"\nstart "dawn.png"\ntemplate motion\nEXT. A - DAY\n  shot 1 wide 2s\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "FLUX.1 dev cannot start from a picture" in result.output, result.output
    path.write_text('model "wan2.2_ti2v_5B_fp16.safetensors"\nstart still "ltx-2-19b-dev-fp8.safetensors"\n'
                    'EXT. A - DAY\n  shot 1 wide 2s\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "bad.story:2:13: error: the start still is made with an image model" in result.output


def test_a_speaking_shot_under_lipsync_renders_on_sound_to_video_with_its_dialogue(tmp_path):
    import wave

    from storylang.build import build

    from media import count_frames
    from test_render import comfy

    (tmp_path / "mara.png").write_bytes((EXAMPLES / "assets" / "mara_reference.png").read_bytes())
    script = tmp_path / "film.story"
    script.write_text('format 384x216 @ 24fps\nmodel "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"\n'
                      'lipsync "wan2.2_s2v_14B_fp8_scaled.safetensors"\n'
                      'character MARA\n  voice "en-us+f3"\n  reference "mara.png"\nEXT. SEA - DAWN\n'
                      '  shot 1 close on MARA 3s\n    MARA: High water at six.\n'
                      '  shot 2 wide 2s\n    narrate "The sea waited."\n')
    film, _, _ = resolve_file(script)
    assert [s.render.template for s in film.shots] == ["lipsync", "motion"]  # narration moves no lips
    server = FakeComfy(version="0.33.0").start()
    try:
        report = build(script, comfy(server, preview=True))
        assert not report.failures, report.failures
        graphs = server.graphs_submitted()
        lipsync = next(g for g in graphs if any(n["class_type"] == "WanSoundImageToVideo" for n in g.values()))
        audio = lipsync["dialogue"]["inputs"]["audio"]
        assert audio in server.uploads and audio.endswith(".wav")
        assert lipsync["speaker"]["inputs"]["image"] in server.uploads  # MARA's reference, the face to move
        # the uploaded dialogue is as long as the shot, silent until the line starts at its time
        timeline = json.loads(report.timeline.read_text())
        line = next(s for s in timeline["speech"] if s["shot"] == "1")
        clip = next(c for c in timeline["clips"] if c["shot"] == "1")
        with wave.open(str(server.dir / "input" / audio)) as w:
            frames = w.readframes(w.getnframes())
            rate, n = w.getframerate(), w.getnframes()
        assert abs(n / rate - clip["frames"] / 24) < 0.01
        samples = [int.from_bytes(frames[i:i + 2], "little", signed=True) for i in range(0, len(frames), 2)]
        start = round((line["start"] - clip["start"]) / 24 * rate)
        assert max(abs(x) for x in samples[:start - 160]) < 50 and max(abs(x) for x in samples[start:]) > 1000
        assert count_frames(report.output) == timeline["frames"]
    finally:
        server.stop()


@pytest.mark.parametrize("text, message", [
    ('lipsync "ltx-2-19b-dev-fp8.safetensors"\n', "f.story:2:9: error: ltx-2-19b-dev-fp8.safetensors is LTX-2, "
                                                  "which does not make video from sound"),
    ('lipsync "wan2.2_s2v_14B_fp8_scaled.safetensors"\n', "a lip-synced shot needs a picture of the speaker"),
])
def test_lipsync_mistakes_are_errors_at_the_line(tmp_path, text, message):
    path = tmp_path / "f.story"
    path.write_text(f'model "flux1-dev-fp8.safetensors"\n{text}character MARA\nEXT. A - DAY\n'
                    '  shot 1 close on MARA 2s\n    MARA: Hello.\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.parametrize("family, node", [("flux1-kontext", "ReferenceLatent"),
                                          ("qwen-image-edit", "TextEncodeQwenImageEditPlus")])
def test_a_family_with_its_own_reference_input_takes_the_cast_sheets_and_references(tmp_path, family, node):
    (tmp_path / "mara.png").write_bytes((EXAMPLES / "assets" / "mara_reference.png").read_bytes())
    path = tmp_path / "film.story"
    path.write_text(f'format 1280x720 @ 24fps\nmodel "{FILES[family]}"\n'
                    'character MARA\n  look "silver braid"\n  reference "mara.png"\n'
                    'character TOM\n  look "grey moustache"\n  sheet\n'
                    'EXT. SEA - DAWN\n  shot 1 wide on MARA and TOM 3s\n    action "they mend nets"\n'
                    '  shot 2 close on TOM 2s\n    template hires\n')
    film, diags, _ = resolve_file(path)
    assert not [d for d in diags if d.severity == "error"]
    for snapshot in ("core-0.33", "full-0.3.64"):
        graphs = compile_film(film, tmp_path, load_object_info(snapshot))
        for sg in graphs:
            assert not [d.message for d in sg.diagnostics if d.severity == "error"], snapshot
            assert not [d.message for d in sg.diagnostics if "not used" in d.message]
            assert "IPAdapterUnifiedLoader" not in {n["class_type"] for n in sg.graph.values()}
        one, two = graphs
        loads = {n["inputs"]["image"]: nid for nid, n in one.graph.items() if n["class_type"] == "LoadImage"}
        assert len(loads) == 2 and any(name.startswith("storylang/sheet_") for name in loads)
        assert [up.shot.id for up in one.upstream] == ["sheet.TOM"] and [u.shot.id for u in two.upstream] == ["sheet.TOM"]
        # the prompt the sampler reads carries both pictures
        sampler = next(n for n in one.graph.values() if n["class_type"] == "KSampler")
        wired, seen = [sampler["inputs"]["positive"][0]], set()
        while wired:
            nid = wired.pop()
            seen.add(nid)
            wired += [v[0] for v in one.graph[nid]["inputs"].values() if isinstance(v, list) and v[0] not in seen]
        assert set(loads.values()) <= seen
        assert node in {one.graph[nid]["class_type"] for nid in seen}
