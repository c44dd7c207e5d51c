"""The whole entry on a tiny rendered set: train every component with tiny budgets, then run on the hidden
view, including a corpus of bad inputs; outputs must be valid and the data folders untouched."""
import os

import numpy as np
import pytest
from conftest import ROOT
from test_harness import png, run_script, snapshot

from paperecg.records.io import find_records, load_signal
from paperecg.tools.hidden_view import make_hidden_view
from paperecg.tools.make_demo_data import make_demo_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Data folder of 6 synthetic records with printed pages, and a model trained on it (tiny profile)."""
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "data"
    make_demo_data(str(data), records=6, seed=3, verbose=False)
    model = root / "model"
    env = {"PAPERECG_PROFILE": "tiny", "PAPERECG_COMPONENTS": "detector,segmenter,classifier"}
    r = run_script(["train_model.py", "-d", str(data), "-m", str(model), "-v"], env_extra=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (root / "train.log").write_text(r.stdout + r.stderr)
    return root, data, model


def test_training_writes_every_component(trained):
    _root, _data, model = trained
    for sub in ("detector", "segmenter", "classifier"):
        assert os.path.isfile(os.path.join(model, sub, "config.json")), sub
    assert os.path.isfile(os.path.join(model, "prevalence.json"))
    # nothing of the run's working state is left in the model folder (staged parts, digitized pages)
    assert sorted(os.listdir(model)) == ["classifier", "detector", "prevalence.json", "segmenter"]


def test_the_fusion_learns_from_what_the_trained_digitizer_reads(trained):
    """Between the segmenter and the classifier, rendered training pages are read with the digitizer this
    run trained, and the classifier's fusion is fitted on those readings too (view kind 2: digitized)."""
    import re

    root, _data, _model = trained
    log = (root / "train.log").read_text()
    read = re.search(r"(\d+) of (\d+) training pages read for the classifier's fusion", log)
    assert read and int(read.group(1)) >= 1, log[-3000:]
    views = re.search(r"\[fusion\] \d+ views of \d+ records \(\[\s*(\d+)\s+(\d+)\s+(\d+)\s*\]", log)
    assert views and int(views.group(3)) == int(read.group(1)), log[-3000:]


def test_pipeline_runs_on_hidden_and_bad_inputs(trained):
    root, data, model = trained
    hidden = root / "hidden"
    make_hidden_view(str(data), str(hidden))
    # bad inputs beside the good ones: blank page, tiny image, a page turned by 90°, a missing image
    first = find_records(hidden)[0]
    (hidden / "blank.hea").write_text((hidden / f"{first}.hea").read_text().replace(f"{first}-0.png", "blank-0.png")
                                      .replace(first, "blank"))
    png(hidden / "blank-0.png", size=(1100, 850))
    from PIL import Image

    Image.new("RGB", (3, 2), "white").save(hidden / "tiny-0.png")
    (hidden / "tiny.hea").write_text((hidden / f"{first}.hea").read_text().replace(first, "tiny"))
    Image.open(hidden / f"{first}-0.png").rotate(90, expand=True).save(hidden / "turned-0.png")
    (hidden / "turned.hea").write_text((hidden / f"{first}.hea").read_text().replace(first, "turned"))
    (hidden / "gone.hea").write_text((hidden / f"{first}.hea").read_text().replace(first, "gone"))
    before = snapshot(hidden)
    out = root / "out"
    r = run_script(["run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(out)],
                   env_extra={"PAPERECG_PROFILE": "tiny"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert snapshot(hidden) == before
    for rel in find_records(hidden):
        sig, fields = load_signal(str(out / rel))
        assert sig.shape == (fields["sig_len"], 12) and not np.isinf(sig).any()
        assert np.nanmax(np.abs(sig), initial=0) <= 32.767
        labels = [l for l in open(out / f"{rel}.hea").read().split("\n") if l.startswith("# Labels:")]
        assert len(labels) == 1
    scores = run_script(["evaluate_model.py", "-d", str(data), "-o", str(out)])
    assert scores.returncode == 0 and "SNR:" in scores.stdout and "F-measure:" in scores.stdout


def test_parallel_run_gives_the_same_outputs(trained):
    """--jobs 2 splits the records over two processes; every output file equals the one-process run's."""
    root, data, model = trained
    hidden = root / "hidden_par"
    make_hidden_view(str(data), str(hidden))
    env = {"PAPERECG_PROFILE": "tiny", "PAPERECG_THREADS": "1"}
    outs = {}
    for jobs in ("1", "2"):
        out = root / f"out_jobs{jobs}"
        r = run_script(["run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(out), "--jobs", jobs],
                       env_extra=env)
        assert r.returncode == 0, r.stderr[-3000:]
        outs[jobs] = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(outs["1"]) == 2 * len(find_records(hidden))
    assert outs["1"] == outs["2"]


def test_shards_cover_every_record_once():
    from paperecg.pipeline.parallel import parse_shard, shard_records, worker_env

    records = [f"r{i:02d}" for i in range(11)]
    parts = [shard_records(records, *parse_shard(f"{i}/3")) for i in range(3)]
    assert sorted(sum(parts, [])) == records and all(parts)
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    assert worker_env(3, 4, gpus=2, base={})["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_env(0, 2, gpus=0, base={})["PAPERECG_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    assert worker_env(0, 2, gpus=0, base={"PAPERECG_THREADS": "3"})["PAPERECG_THREADS"] == "3"
