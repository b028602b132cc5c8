"""The ComfyUI renderer against test servers of fixed render time, in one run.

    python bench/render.py

Prints: the client's overhead per shot (submit → first event from the server; last event →
the output checked and in the cache), measured on a server that renders instantly; the pool's
speed-up with 1, 2 and 4 servers that each take a fixed time per shot; and the model loads
of a film whose shots alternate between three checkpoints, scheduled by loaded models
(storylang's default) and in script order (round-robin over the pool); and the makespan of a
24-shot film whose renders read renders (3 character sheets, 2 chains of 4 continuing shots
each after its start still: 29 renders) on 1, 2 and 4 servers of a fixed time per render,
against the lower bound max(longest chain, renders / servers) in render times. Goals: overhead
under 20 ms per shot; 4 servers at least 3.6x one server; fewer model loads than script order;
makespan within 1.15x of the lower bound, with no more model loads than script order.
The test servers (tests/comfy/fake_server.py) run in this process and speak PROTOCOL.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "comfy"), str(ROOT / "tests")]

from fake_server import FakeComfy  # noqa: E402

from storylang.cache import Cache  # noqa: E402
from storylang.comfy import run as run_mod  # noqa: E402
from storylang.render import RenderContext  # noqa: E402
from storylang.render.comfy import ComfyRenderer, ComfySettings  # noqa: E402
from storylang.resolve import resolve_file  # noqa: E402
from storylang.timing import time_film  # noqa: E402


def film_text(shots: int, checkpoints: list[str]) -> str:
    lines = ['title "Bench" 0s', "format 128x72 @ 12fps", "steps 4", "", "EXT. YARD - DAY"]
    for i in range(shots):
        ckpt = checkpoints[i % len(checkpoints)]
        lines += [f"  shot {i + 1} wide 1s", f'    model "{ckpt}"', f'    action "a crate, number {i + 1}"']
    return "\n".join(lines) + "\n"


def render(folder: Path, text: str, servers: list[FakeComfy], **settings):
    script = folder / "film.story"
    script.write_text(text)
    film, diags, _ = resolve_file(script, str(script))
    assert film is not None, [d.message for d in diags]
    ctx = RenderContext(root=folder, cache=Cache(folder / "build" / "cache"), jobs=2, build_dir=folder / "build")
    renderer = ComfyRenderer(ComfySettings(servers=[s.url for s in servers], poll=0.05, **settings))
    phases = {}
    real_run = renderer._run

    def timed_run(*args, **kw):  # the rendering itself, after pre-flight and compiling
        t = time.perf_counter()
        try:
            return real_run(*args, **kw)
        finally:
            phases["run"] = time.perf_counter() - t

    renderer._run = timed_run
    t0 = time.perf_counter()
    rendered = renderer.render(film, time_film(film, {}), ctx)
    assert not rendered.failures, rendered.failures
    return time.perf_counter() - t0, phases["run"]


def overhead(n: int = 30) -> tuple[float, float]:
    """Median ms from submit to the first event, and from the last event to the output stored."""
    marks: dict[str, dict[str, float]] = {}
    real_submit, real_wait = ComfyRenderer._submit, run_mod.wait_for
    real_collect = ComfyRenderer._collect

    def submit(self, server, graph, pid, shot):
        marks.setdefault(shot.id, {})["submit"] = time.perf_counter()
        return real_submit(self, server, graph, pid, shot)

    def wait_for(server, prompt_id, events, stall, poll, cancelled, on_event=lambda k, d: None):
        def seen(kind, data):
            m = marks.setdefault(server.running.get(prompt_id, "?"), {})
            m.setdefault("first", time.perf_counter())
            m["last"] = time.perf_counter()
            on_event(kind, data)
        return real_wait(server, prompt_id, events, stall, poll, cancelled, seen)

    def collect(self, server, entry, job, shot, timing, ctx, fps):
        result = real_collect(self, server, entry, job, shot, timing, ctx, fps)
        marks[shot.id]["stored"] = time.perf_counter()
        return result

    ComfyRenderer._submit, ComfyRenderer._collect = submit, collect
    import storylang.render.comfy as comfy_mod
    comfy_mod.wait_for = wait_for
    server = FakeComfy().start()
    try:
        with tempfile.TemporaryDirectory() as d:
            render(Path(d), film_text(n, ["random_sd15.safetensors"]), [server], inflight=1)
    finally:
        server.stop()
        ComfyRenderer._submit, ComfyRenderer._collect = real_submit, real_collect
        comfy_mod.wait_for = real_wait
    before = [1000 * (m["first"] - m["submit"]) for m in marks.values() if "submit" in m and "first" in m]
    after = [1000 * (m["stored"] - m["last"]) for m in marks.values() if "stored" in m and "last" in m]
    return statistics.median(before), statistics.median(after)


def pool_speedup(shots: int = 24, per_shot: float = 0.4) -> dict[int, tuple[float, float]]:
    times = {}
    for n in (1, 2, 4):
        servers = [FakeComfy(step_delay=per_shot / 4).start() for _ in range(n)]
        try:
            with tempfile.TemporaryDirectory() as d:
                times[n] = render(Path(d), film_text(shots, ["random_sd15.safetensors"]), servers)
        finally:
            for s in servers:
                s.stop()
    return times


def model_loads(shots: int = 24) -> dict[str, int]:
    checkpoints = ["random_sd15.safetensors", "dreamshaper_8.safetensors", "third.safetensors"]
    models = {"checkpoints": checkpoints}
    loads = {}
    for schedule in ("models", "film"):
        servers = [FakeComfy(models=models, step_delay=0.01).start() for _ in range(2)]
        try:
            with tempfile.TemporaryDirectory() as d:
                render(Path(d), film_text(shots, checkpoints), servers, schedule=schedule)
            loads[schedule] = sum(len(s.loads) for s in servers)
        finally:
            for s in servers:
                s.stop()
    return loads


def chained_film() -> str:
    """16 stills of three characters with sheets, then two scenes of four continuing LTX-2 shots:
    27 renders, the longest line of them four long."""
    lines = ['title "Bench" 0s', "format 128x72 @ 12fps", 'model "dreamshaper_8.safetensors"', "steps 4"]
    cast = ["ANNA", "BO", "CY"]
    for name in cast:
        lines += [f"character {name}", f'  look "{name.lower()}, in a red coat"', "  sheet"]
    lines += ["EXT. YARD - DAY"]
    for i in range(16):
        lines += [f"  shot {i + 1} close on {cast[i % 3]} 1s", f'    action "number {i + 1}"']
    for scene in range(2):
        lines += [f"EXT. SEA {scene + 1} - DAWN", '  model "ltx-2-19b-dev-fp8.safetensors"', "  template motion"]
        for k in range(4):
            n = 17 + scene * 4 + k
            lines += ([] if k == 0 else ["  > continue"]) + [f"  shot {n} wide 1s", f'    action "wave {n}"']
    return "\n".join(lines) + "\n"


def makespan(per_render: float = 1.0) -> dict:
    """Rendering seconds of the chained film on 1, 2, 4 servers, and (on 2) in script order."""
    out = {}
    for n, schedule in ((1, "models"), (2, "models"), (2, "film"), (4, "models")):
        servers = [FakeComfy(version="0.33.0", prompt_delay=per_render).start() for _ in range(n)]
        try:
            with tempfile.TemporaryDirectory() as d:
                _, run = render(Path(d), chained_film(), servers, schedule=schedule)
            out[(n, schedule)] = (run, sum(len(s.submitted) for s in servers), sum(len(s.loads) for s in servers))
        finally:
            for s in servers:
                s.stop()
    return out


def main() -> None:
    before, after = overhead()
    print(f"client overhead per shot (median of 30): submit -> first event {before:.1f} ms, "
          f"last event -> output in cache {after:.1f} ms (goal: under 20 ms)")
    times = pool_speedup()
    for n, (total, run) in times.items():
        print(f"pool of {n}: 24 shots of 0.4 s: {total:.2f} s in all, {run:.2f} s rendering after pre-flight; "
              f"speed-up {times[1][0] / total:.2f}x in all, {times[1][1] / run:.2f}x rendering")
    print(f"4 servers vs 1: {times[1][0] / times[4][0]:.2f}x in all, {times[1][1] / times[4][1]:.2f}x rendering "
          f"(goal: at least 3.6x)")
    loads = model_loads()
    print(f"model loads, 24 shots over 3 checkpoints on 2 servers: by loaded models {loads['models']}, "
          f"in script order {loads['film']}")
    per = 1.0
    spans = makespan(per)
    for n in (1, 2, 4):
        run, renders, loads = spans[(n, "models")]
        bound = max(4, renders / n) * per  # the longest chain: four continuing shots
        print(f"renders reading renders, {renders} renders of {per:.1f} s on {n} server(s): makespan {run:.2f} s, "
              f"lower bound {bound:.2f} s, ratio {run / bound:.2f} (goal: at most 1.15); {loads} model loads")
    print(f"  on 2 servers in script order: makespan {spans[(2, 'film')][0]:.2f} s, "
          f"{spans[(2, 'film')][2]} model loads (by loaded models: {spans[(2, 'models')][2]})")


if __name__ == "__main__":
    main()
