"""Emit and validate the ComfyUI graphs of a generated 1,000-shot film; goal under 1 s.

    python bench/compile.py [--shots N] [--template still]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parse import generate  # noqa: E402  (the same generated film as bench/parse.py)

from storylang.comfy.graphs import compile_film, graph_json  # noqa: E402
from storylang.comfy.schema import snapshot  # noqa: E402
from storylang.resolve import resolve_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--template", default="still")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.story"
        path.write_text(generate(args.shots).replace('steps 28', f'steps 28  template {args.template}'))
        film, diags, _ = resolve_file(path)
        assert film is not None, diags[:3]
        info = snapshot("full")
        compile_film(film.model_copy(update={"shots": film.shots[:2]}), path.parent, info)  # warm-up
        t0 = time.perf_counter()
        compiled = compile_film(film, path.parent, info)
        t1 = time.perf_counter()
        texts = [graph_json(sg.graph) for sg in compiled]
        t2 = time.perf_counter()
    errors = sum(1 for sg in compiled for x in sg.diagnostics if x.severity == "error")
    nodes = sum(len(sg.graph) for sg in compiled)
    print(f"shots: {len(compiled)}  template: {args.template}  nodes: {nodes}  errors: {errors}")
    print(f"emit + validate:  {(t1 - t0) * 1000:7.1f} ms  ({len(compiled) / (t1 - t0):,.0f} graphs/s)   goal < 1000 ms")
    print(f"serialise (sorted JSON): {(t2 - t1) * 1000:7.1f} ms, {sum(map(len, texts)) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
