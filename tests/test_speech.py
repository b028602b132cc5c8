"""Speech is right and the same every time: each line as asked, byte-identical on every synthesis."""

import json
import subprocess
import sys
import wave

from storylang.cache import Cache
from storylang.film import Voice
from storylang.speech import SpeechStage, engine

LINES = [
    ("Every night for forty years, Mara climbed the stairs.", Voice(id="en-us+f3", rate=120)),
    ("Not tonight.", Voice(id="en-us", rate=260, pitch=30)),
    ("The lamp is cold, and the sea is loud.", Voice(id="en-gb+m3", rate=140)),
    ("Every night for forty years, Mara climbed the stairs.", Voice(id="en-us+f3", rate=240)),
]

SPEAK_ALL = """
import sys, json
from pathlib import Path
from storylang.cache import Cache
from storylang.film import Voice
from storylang.speech import SpeechStage, engine
stage = SpeechStage(engine(), Cache(Path(sys.argv[1])))
lines = [(t, Voice(**v)) for t, v in json.loads(sys.argv[2])]
jobs = [stage.job(t, v) for t, v in lines]
stage.speak_all(jobs, workers=4)
print(json.dumps([str(j.path) for j in jobs]))
"""


def _speak_in_process(cache_dir, lines, seed):
    arg = json.dumps([(t, v.model_dump()) for t, v in lines])
    out = subprocess.run([sys.executable, "-c", SPEAK_ALL, str(cache_dir), arg], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": str(seed), "PATH": ""}, check=True)
    return [open(p, "rb").read() for p in json.loads(out.stdout)]


def _seconds(data: bytes) -> float:
    import io

    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def test_the_same_line_gives_the_same_bytes_in_parallel_and_in_two_processes(tmp_path):
    lines = LINES * 3
    a = _speak_in_process(tmp_path / "a", lines, seed=1)
    b = _speak_in_process(tmp_path / "b", lines, seed=2)
    assert a == b
    # the repeated lines, spoken at once by parallel workers, are identical too
    for i, data in enumerate(a):
        assert data == a[i % len(LINES)]


def test_every_line_is_spoken_at_its_own_rate_whatever_runs_beside_it(tmp_path):
    stage = SpeechStage(engine(), Cache(tmp_path))
    alone = {}
    for text, voice in LINES:
        job = stage.job(text, voice)
        stage.speak(job)
        alone[(text, voice.rate)] = job.path.read_bytes()
    stage = SpeechStage(engine(), Cache(tmp_path / "parallel"))
    jobs = [stage.job(t, v) for t, v in LINES * 3]
    stage.speak_all(jobs, workers=6)
    for job in jobs:
        assert job.path.read_bytes() == alone[(job.text, job.voice.rate)]
    slow, fast = _seconds(alone[(LINES[0][0], 120)]), _seconds(alone[(LINES[0][0], 240)])
    assert slow > fast * 1.5


def test_a_cached_line_is_trusted_only_if_its_record_matches(tmp_path):
    stage = SpeechStage(engine(), Cache(tmp_path))
    job = stage.job(*LINES[1])
    assert not stage.is_done(job)
    stage.speak(job)
    assert stage.is_done(job)
    record = json.loads(job.record.read_text())
    record["used"]["rate"] = 175  # as if spoken at another line's rate
    job.record.write_text(json.dumps(record))
    assert not stage.is_done(job)
    stage.speak(job)
    assert stage.is_done(job)
    job.path.write_bytes(job.path.read_bytes()[:-1000])  # a truncated WAV
    assert not stage.is_done(job)
    job.record.unlink()
    stage.speak(job)
    assert stage.is_done(job)
    assert not stage.is_done(stage.job(LINES[1][0], Voice(id="en-us", rate=261, pitch=30)))
