"""Resumable runs over an archive (paperecg/pipeline/archive.py) and the Dask cluster path
(paperecg/pipeline/cluster.py), with a stand-in for the digitizer: a task that writes a small record through
the same staging and publishing as `paperecg digitize`, slowly enough to be killed in the middle. The real
digitizer's path through the command is tested in test_cli.py."""
import functools
import json
import os
import signal
import time

import numpy as np
import pytest

from paperecg.pipeline.archive import (MANIFEST_CSV, MANIFEST_NAME, STAGING_DIR, ArchiveItem, JobResult, Manifest,
                                       clear_staging, local_executor, model_identity, publish, run_archive,
                                       staging_folder, this_worker)

NUM_SAMPLES = 500


def expected_dat(name: str) -> bytes:
    """The signal file of a page: its bytes depend on the page, so a mixed-up or truncated file shows."""
    seed = sum(name.encode())
    return (np.arange(NUM_SAMPLES, dtype=np.int16) * seed).tobytes()


def slow_page(task) -> JobResult:
    """Write NAME.dat, then (after `seconds`, the time a worker may be killed in) NAME.hea and NAME.json, in a
    staging folder, then publish them; 'bad' names fail as a bad image does."""
    name, out, seconds, marks = task
    if marks:  # which process started which page
        open(os.path.join(marks, f"{name}.{os.getpid()}"), "w").close()
    if "bad" in name:
        return JobResult(name, False, "not a readable image", worker=this_worker())
    stage = staging_folder(out)
    dat = os.path.join(stage, name + ".dat")
    with open(dat, "wb") as f:
        f.write(expected_dat(name)[: NUM_SAMPLES])  # half written...
        f.flush()
        time.sleep(seconds)
        f.write(expected_dat(name)[NUM_SAMPLES:])
    with open(os.path.join(stage, name + ".hea"), "w") as f:
        f.write(f"{name} 1 500 {NUM_SAMPLES}\n{name}.dat 16 1000/mV 16 0 0 0 0 I\n")
    with open(os.path.join(stage, name + ".json"), "w") as f:
        json.dump({"name": name}, f)
    outputs = publish([dat, os.path.join(stage, name + ".hea"), os.path.join(stage, name + ".json")], out)
    os.rmdir(stage)
    return JobResult(name, True, "", 1, 1, seconds, outputs, ["I"], this_worker(), "fake")


def make_inputs(folder, names):
    os.makedirs(folder, exist_ok=True)
    items = []
    for name in names:
        path = os.path.join(folder, name + ".png")
        with open(path, "wb") as f:
            f.write(name.encode())
        items.append(path)
    return items


def archive_items(inputs, out, seconds=0.0, marks=None):
    return [ArchiveItem(os.path.splitext(os.path.basename(p))[0], [p], (os.path.splitext(os.path.basename(p))[0],
                                                                       str(out), seconds, marks)) for p in inputs]


def counting(calls):
    def fn(task):
        calls.append(task[0])
        return slow_page(task)

    return fn


def assert_complete_once(out, names):
    """Every page has exactly its three outputs, whole; nothing else is left in OUT."""
    left = sorted(os.listdir(out))
    expected = sorted([f"{n}{ext}" for n in names for ext in (".dat", ".hea", ".json")] + [MANIFEST_NAME, MANIFEST_CSV])
    assert left == expected
    for n in names:
        with open(os.path.join(out, n + ".dat"), "rb") as f:
            assert f.read() == expected_dat(n), n


def test_a_second_run_skips_what_is_done_and_retries_failures_only_when_asked(tmp_path):
    out = tmp_path / "out"
    names = ["p0", "p1", "bad2", "p3"]
    items = archive_items(make_inputs(tmp_path / "in", names), out)
    manifest = Manifest(str(out / MANIFEST_NAME))
    calls = []
    results, plan = run_archive(items, counting(calls), manifest, local_executor(1), out=str(out), progress=False,
                                skipped=[("notes.pdf", str(tmp_path / "in" / "notes.pdf"), "not an image file (.pdf)")])
    assert sorted(calls) == sorted(names) and len(plan.todo) == 4
    rows = manifest.rows()
    assert {n: r["status"] for n, r in rows.items()} == {"p0": "done", "p1": "done", "bad2": "failed",
                                                         "p3": "done", "notes.pdf": "skipped"}
    assert rows["bad2"]["reason"] == "not a readable image" and rows["notes.pdf"]["reason"].startswith("not an image")
    assert rows["p0"]["leads"] == "I" and rows["p0"]["model_id"] == "fake" and rows["p0"]["attempts"] == 1
    assert_complete_once(out, ["p0", "p1", "p3"])

    calls.clear()
    said = []
    _, plan = run_archive(items, counting(calls), manifest, local_executor(1), out=str(out), progress=False,
                          model_id="sha256:another", log=said.append)
    assert calls == [] and plan.done_before == 3 and plan.failed_kept == 1
    assert plan.other_model == 3 and "read by another model" in said[0]  # kept, and said so

    (out / "p1.json").unlink()  # an output gone: read again
    with open(items[3].inputs[0], "ab") as f:  # an input changed: read again
        f.write(b"more")
    run_archive(items, counting(calls), manifest, local_executor(1), out=str(out), progress=False)
    assert sorted(calls) == ["p1", "p3"]

    calls.clear()
    run_archive(items, counting(calls), manifest, local_executor(1), out=str(out), progress=False, retry_failed=True)
    assert calls == ["bad2"] and manifest.rows()["bad2"]["attempts"] == 2
    assert_complete_once(out, ["p0", "p1", "p3"])
    with open(out / MANIFEST_CSV) as f:  # the copy for a spreadsheet
        assert f.readline().startswith("name,status,reason,leads_found")
        assert len(f.readlines()) == 5


def test_a_killed_run_leaves_pending_rows_no_partial_output_and_the_next_run_finishes(tmp_path):
    out = tmp_path / "out"
    names = [f"p{i}" for i in range(5)]
    items = archive_items(make_inputs(tmp_path / "in", names), out)
    manifest = Manifest(str(out / MANIFEST_NAME))

    def killed_after_two(fn, payloads, _names):
        for k, payload in enumerate(payloads):
            if k == 2:  # the process dies while writing the third page: its staging folder is half-written
                stage = staging_folder(str(out))
                with open(os.path.join(stage, payload[0] + ".dat"), "wb") as f:
                    f.write(b"half")
                raise KeyboardInterrupt
            yield fn(payload)

    with pytest.raises(KeyboardInterrupt):
        run_archive(items, slow_page, manifest, killed_after_two, out=str(out), progress=False)
    status = {n: r["status"] for n, r in Manifest(str(out / MANIFEST_NAME)).rows().items()}  # as another reader sees it
    assert status == {"p0": "done", "p1": "done", "p2": "pending", "p3": "pending", "p4": "pending"}
    assert not (out / "p2.dat").exists() and not (out / "p2.hea").exists()

    calls = []
    run_archive(items, counting(calls), manifest, local_executor(1), out=str(out), progress=False)
    assert calls == ["p2", "p3", "p4"]
    assert set(manifest.counts().items()) >= {("done", 5), ("pending", 0)}
    assert not (out / STAGING_DIR).exists()
    assert_complete_once(out, names)


def test_publish_moves_whole_files_with_the_header_last(tmp_path, monkeypatch):
    out = tmp_path / "out"
    stage = staging_folder(str(out))
    staged = []
    for ext in (".hea", ".dat", ".csv"):
        staged.append(os.path.join(stage, "rec" + ext))
        with open(staged[-1], "w") as f:
            f.write(ext)
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(os.path.basename(b)), real_replace(a, b)))
    final = publish(staged, str(out / "sub"))
    assert moved[-1] == "rec.hea" and sorted(moved) == ["rec.csv", "rec.dat", "rec.hea"]
    assert final == [str(out / "sub" / ("rec" + e)) for e in (".hea", ".dat", ".csv")]
    assert (out / "sub" / "rec.dat").read_text() == ".dat" and os.listdir(stage) == []
    clear_staging(str(out))
    assert not (out / STAGING_DIR).exists()


def test_model_identity_follows_weights_and_configs_only(tmp_path):
    from importlib import reload

    from paperecg.pipeline import archive

    model = tmp_path / "model"
    (model / "segmenter").mkdir(parents=True)
    (model / "segmenter" / "model.safetensors").write_bytes(b"weights")
    (model / "segmenter" / "config.json").write_text("{}")
    (model / "README.md").write_text("how it was trained")
    first = model_identity(str(model))
    assert first.startswith("sha256:") and len(first) == 7 + 16
    reload(archive)  # a fresh process's cache
    (model / "README.md").write_text("edited")
    assert archive.model_identity(str(model)) == first
    reload(archive)
    (model / "segmenter" / "model.safetensors").write_bytes(b"other weights")
    assert archive.model_identity(str(model)) != first


def test_files_that_are_not_images_get_one_line_each(tmp_path):
    from paperecg.cli.digitize import find_jobs, other_files

    data, out = tmp_path / "archive", tmp_path / "archive" / "out"
    (data / "pdfs").mkdir(parents=True)
    (data / "pdfs" / "a.pdf").write_bytes(b"%PDF-1.4")
    (data / "pdfs" / "b.pdf").write_bytes(b"%PDF-1.4")
    (data / "notes.txt").write_text("x")
    (data / ".DS_Store").write_bytes(b"x")  # hidden: no line
    (data / "empty.png").write_bytes(b"")  # an image by name: an input that will fail, not a skipped file
    (data / "rec.hea").write_text("rec 12 500 5000\n")  # a record's own files: no line
    (data / "rec.dat").write_bytes(b"")
    out.mkdir()
    (out / "empty.json").write_text("{}")  # the outputs inside the archive are not walked
    (out / "x.pdf").write_bytes(b"")
    found = other_files([str(data)], str(out))
    assert [(n, r.split(":")[0]) for n, _, r in found] == [("notes.txt", "not an image file (.txt)"),
                                                           ("pdfs/a.pdf", "not an image file (.pdf)"),
                                                           ("pdfs/b.pdf", "not an image file (.pdf)")]
    assert "pdftoppm" in found[1][2]
    assert [j.name for j in find_jobs([str(data)], out=str(out))] == ["empty"]


def test_cluster_usage_errors_name_the_fix():
    from paperecg.cli import main

    assert main(["digitize", "model", "--cluster", "remote:3"]) == 2
    assert main(["digitize", "model", "--cluster", "local:2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert main(["digitize", "model", "--cluster", "local:2", "--jobs", "2"]) == 2


# --- the Dask cluster --------------------------------------------------------------------------------------

def _note_warm(folder: str) -> None:
    open(os.path.join(folder, str(os.getpid())), "a").write("warm\n")


@pytest.fixture
def local_cluster():
    distributed = pytest.importorskip(
        "distributed", reason="Dask is an optional extra (pip install '.[cluster]'; make test installs it)")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=50)
    yield cluster
    cluster.close()


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, local_cluster):
    """2 workers on loopback, ~20 pages; one worker process is killed while it writes a page. Dask hands
    that page to a worker again; every page ends with exactly one complete output and the manifest says done."""
    from paperecg.pipeline.cluster import WarmWorker, check_workers, dask_executor, start_client

    out, marks, warm = tmp_path / "out", tmp_path / "marks", tmp_path / "warm"
    marks.mkdir()
    warm.mkdir()
    names = [f"page{i:02d}" for i in range(20)]
    items = archive_items(make_inputs(tmp_path / "in", names), out, seconds=0.4, marks=str(marks))
    client, _, _ = start_client(local_cluster.scheduler_address)  # the --scheduler path
    try:
        client.register_plugin(WarmWorker(functools.partial(_note_warm, str(warm))))
        killed = {}

        def kill_one_busy_worker(result):
            if killed or len(results_seen) < 3:
                results_seen.append(result)
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if not busy:  # between two pages: try at the next result
                return
            address = busy[0]
            pid = client.run(os.getpid, workers=[address])[address]
            time.sleep(0.1)  # inside its page's 0.4 s of writing
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid

        results_seen = []
        manifest = Manifest(str(out / MANIFEST_NAME))
        results, _ = run_archive(items, slow_page, manifest, dask_executor(client), out=str(out), progress=False,
                                 on_result=kill_one_busy_worker)
        # before a --scheduler run: every worker must have the same model folder
        assert check_workers(client, functools.partial(str, "sha256:1"), "sha256:1") == []
        other = check_workers(client, functools.partial(str, "sha256:2"), "sha256:1")
        assert len(other) == 2 and other[0].endswith("sha256:2 (this machine: sha256:1)")
        missing = check_workers(client, functools.partial(model_identity, str(tmp_path / "none")), "sha256:1")
        assert len(missing) == 2 and "FileNotFoundError: no model folder" in missing[0]
    finally:
        client.close()
    assert killed, "no worker was killed"
    rows = manifest.rows()
    assert {r["status"] for r in rows.values()} == {"done"} and sorted(rows) == names
    assert sorted(r.name for r in results) == names and all(r["attempts"] == 1 for r in rows.values())
    assert_complete_once(out, names)  # nothing half-written, no second copy, no staging left
    # the killed worker had started a page it never finished: another worker wrote it
    started = [m.rsplit(".", 1) for m in os.listdir(marks)]
    interrupted = [name for name, pid in started if int(pid) == killed["pid"]
                   and not rows[name]["worker"].endswith(f":{killed['pid']}")]
    assert interrupted, started
    # each worker process (the restarted one too) ran the warm-up once, and every page ran on a warmed one
    for pid_file in os.listdir(warm):
        assert (warm / pid_file).read_text() == "warm\n"
    assert {r["worker"].split(":")[1] for r in rows.values()} <= set(os.listdir(warm))


def test_the_command_on_a_local_cluster(tmp_path):
    """`paperecg digitize FOLDER --cluster local:1`: the worker gets the model, the bad inputs get their rows,
    the dashboard link is printed, and a second run has nothing to do (the shipped model's figures are
    test_cli.py's: here the inputs are bad files and the model folder is empty, so the run is quick)."""
    import subprocess
    import sys

    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install '.[cluster]'; make test installs it)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model = tmp_path / "model"  # an untrained model folder: nothing to load, the inputs are bad anyway
    model.mkdir()
    (model / "prevalence.json").write_text("{}")
    data = tmp_path / "archive"
    (data / "pdfs").mkdir(parents=True)
    (data / "pdfs" / "scan.pdf").write_bytes(b"%PDF-1.4")
    (data / "empty.png").write_bytes(b"")
    (data / "noise.jpg").write_bytes(os.urandom(2000))
    env = dict(os.environ, PAPERECG_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=root)
    env.pop("PAPERECG_PROFILE", None)
    cmd = [sys.executable, "-m", "paperecg.cli", "digitize", str(data), "-o", str(tmp_path / "out"), "--cluster", "local:1",
           "--model", str(model)]
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "Dask dashboard:" in r.stderr and "LocalCluster of 1 workers: 1 workers" in r.stderr
    rows = Manifest(str(tmp_path / "out" / MANIFEST_NAME)).rows()
    assert {n: r["status"] for n, r in rows.items()} == {"empty": "failed", "noise": "failed", "pdfs/scan.pdf": "skipped"}
    assert rows["empty"]["reason"] and rows["noise"]["reason"]
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "nothing left to digitize" in r.stdout and "2 failed before" in r.stdout, r.stdout


def test_local_cluster_workers_keep_glibc_malloc_defaults_and_quiet_timers():
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_, which turns off glibc's dynamic mmap threshold: a page took
    2.8 CPU s in such a worker, 1.6 s in a plain process. Our LocalCluster's workers start without it."""
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install '.[cluster]'; make test installs it)")
    import dask

    from paperecg.pipeline.cluster import start_client

    client, cluster, _ = start_client(None, 1, 0, dashboard_address=None)
    try:
        (env,) = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()
        (tick,) = client.run(dask.config.get, "distributed.admin.tick.interval").values()
    finally:
        client.close()
        cluster.close()
    assert env is None and tick == "1s"
