"""The pool as a scheduler of jobs that read each other's outputs: a job runs once what it reads
has landed, the longest remaining chain first, then by loaded models; a failed job's readers are
not run. Driven with a run function that records the order (no server needed)."""

import threading
import time
from types import SimpleNamespace

from storylang.comfy.run import Job, Outcome, Pool, Server, chains


def job(jid: str, after=(), models=("a.safetensors",), servers=("s1",)) -> Job:
    return Job(shot_id=jid, graphs={s: {} for s in servers}, keys={s: jid for s in servers},
               inputs={s: [] for s in servers}, models=tuple(models), after=tuple(after))


def server(name: str, inflight: int = 1) -> Server:
    return Server(client=SimpleNamespace(name=name), inflight=inflight)


spans: dict[str, list[float]] = {}  # job → [start, end] of its last run


def run_pool(servers, jobs, fail=(), seconds=0.01):
    order, lock = [], threading.Lock()

    def run(srv, j):
        with lock:
            order.append((srv.name, j.shot_id))
        spans[j.shot_id] = [time.monotonic()]
        time.sleep(seconds)
        spans[j.shot_id].append(time.monotonic())
        return Outcome(j, srv.name, j.shot_id, error="boom" if j.shot_id in fail else None,
                       entry=None if j.shot_id in fail else {})

    pool = Pool(servers, jobs, run, backoff=0.01)
    pool.run_all()
    return pool, order


def test_chain_lengths_count_the_jobs_that_wait_one_after_another():
    jobs = [job("sheet"), job("1", ["sheet"]), job("2", ["1"]), job("3", ["2"]), job("x"), job("y", ["sheet"])]
    chains(jobs)
    assert {j.shot_id: j.chain for j in jobs} == {"sheet": 4, "1": 3, "2": 2, "3": 1, "x": 1, "y": 1}


def test_a_thousand_shot_chain_needs_no_deep_recursion():
    jobs = [job("0")] + [job(str(i), [str(i - 1)]) for i in range(1, 1000)]
    chains(jobs)
    assert jobs[0].chain == 1000 and jobs[-1].chain == 1


def test_nothing_runs_before_what_it_reads_and_the_longest_chain_goes_first():
    # independent shots listed first; the chain decides the makespan on two servers, so its head goes first
    jobs = [job("a", servers=("s1", "s2")), job("b", servers=("s1", "s2")), job("c", servers=("s1", "s2")),
            job("1", servers=("s1", "s2")), job("2", ["1"], servers=("s1", "s2")),
            job("3", ["2"], servers=("s1", "s2"))]
    pool, order = run_pool([server("s1"), server("s2")], jobs)
    ran = [jid for _, jid in order]
    assert "1" in ran[:2] and ran.index("1") < ran.index("2") < ran.index("3")
    assert sorted(pool.done) == ["1", "2", "3", "a", "b", "c"]


def test_a_chain_that_does_not_decide_the_makespan_leaves_the_order_to_loaded_models():
    # one server: the order cannot change when it ends, so shots sharing a model stay together
    jobs = [job("x", models=("b",)), job("y", models=("a",)), job("z", models=("b",)), job("w", models=("b",)),
            job("v", models=("a",)), job("1", models=("a",)), job("2", ["1"], models=("b",))]
    pool, order = run_pool([server("s1")], jobs)
    ran = [jid for _, jid in order]
    assert ran[:3] == ["x", "z", "w"]  # the first job's model, then the jobs of the same model


def test_a_chain_overlaps_the_other_work_on_two_servers():
    jobs = [job(f"s{i}", servers=("s1", "s2")) for i in range(4)]
    jobs += [job("1", servers=("s1", "s2")), job("2", ["1"], servers=("s1", "s2")),
             job("3", ["2"], servers=("s1", "s2"))]
    pool, order = run_pool([server("s1"), server("s2")], jobs, seconds=0.05)
    # 7 jobs on 2 servers: the chain of 3 runs beside the 4 others (not after them, as waves would)
    ran = [jid for _, jid in order]
    assert len(ran) == 7 and ran[0] == "1"
    assert spans["3"][0] < max(spans[f"s{i}"][1] for i in range(4))


def test_a_failed_job_blocks_everything_downstream_and_nothing_else():
    jobs = [job("sheet"), job("1", ["sheet"]), job("2", ["1"]), job("x")]
    pool, order = run_pool([server("s1")], jobs, fail={"sheet"})
    assert [jid for _, jid in order] == ["sheet", "x"]
    assert pool.blocked == {"1": "sheet", "2": "1"}
    assert pool.counts() == {"waiting": 0, "queued": 0, "running": 0, "done": 1, "failed": 3}


def test_a_job_whose_input_only_a_server_set_aside_can_make_ends_the_pool_instead_of_waiting():
    s1, s2 = server("s1"), server("s2")
    s2.down = "gone"
    jobs = [job("still", servers=("s2",)), job("1", ["still"], servers=("s1",))]
    done = threading.Event()

    def go():
        run_pool([s1, s2], jobs)
        done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(5), "the pool waited for a job no live server can run"
