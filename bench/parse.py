"""Parse + resolve a generated 1,000-shot film; print time, shots per second and peak memory.

Goal: under 0.5 s for 1,000 shots, memory under 200 MB.
    python bench/parse.py [--shots N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from storylang.loader import Loader
from storylang.resolve import resolve_file
from storylang.syntax.parse import parse_file


def generate(shots: int) -> str:
    out = [
        'title "Benchmark"', "format 1280x720 @ 24fps",
        'model "m.safetensors"  sampler dpmpp_2m  scheduler karras  steps 28  cfg 5.5',
        "character MARA", '  look "woman in her sixties, silver braid"', '  voice "en-us" rate 160',
        "character TOM", '  look "old fisherman"', '  voice "en-gb" rate 140',
    ]
    moves = ["push in slow", "pan left", "static", "orbit right 20deg", "tilt up fast", "pull out"]
    for i in range(shots):
        if i % 10 == 0:
            out.append(f"EXT. PLACE {i // 10} - NIGHT")
            out.append('  setting "white lighthouse on black rocks, storm"')
        who = ["MARA", "TOM", "MARA and TOM"][i % 3]
        out.append(f"  shot {i + 1} {['wide', 'close', 'medium'][i % 3]} on {who} 4s")
        out.append(f"    camera {moves[i % len(moves)]}")
        out.append(f'    action "the beam sweeps across the waves, take {i}"')
        if i % 2:
            out.append("    MARA (quietly): Not tonight.")
        else:
            out.append('    narrate "Every night, she climbed."')
        if i % 7 == 3:
            out.append("  > dissolve 0.5s")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.story"
        path.write_text(generate(args.shots))
        parse_file(path)  # warm up: grammar compilation is once per process
        parse_times, total_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            parse_file(path)
            t1 = time.perf_counter()
            # a fresh loader: nothing parsed before (resolve_file's loader would remember the file)
            loader = Loader()
            film, diags, _ = resolve_file(path, loader=loader)
            t2 = time.perf_counter()
            del loader  # freeing the parsed tree is not part of parsing it
            assert film is not None and len(film.shots) == args.shots, diags[:3]
            parse_times.append(t1 - t0)
            total_times.append(t2 - t1)
        loader = Loader()
        resolve_file(path, loader=loader)
        t0 = time.perf_counter()
        resolve_file(path, loader=loader)
        warm = time.perf_counter() - t0
    best = min(total_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"shots: {args.shots}  lines: {path.name} {len(generate(args.shots).splitlines())}")
    print(f"parse only:       {min(parse_times) * 1000:7.1f} ms")
    print(f"parse + resolve:  {best * 1000:7.1f} ms  ({args.shots / best:,.0f} shots/s)   goal < 500 ms")
    print(f"again, file unchanged: {warm * 1000:6.1f} ms  (the loader remembers parsed files by content)")
    print(f"peak memory:      {peak_mb:7.1f} MB   goal < 200 MB")


if __name__ == "__main__":
    main()
