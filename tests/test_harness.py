"""The challenge harness: train_model.py / run_model.py behaviour, team_code's guarantees, bad inputs."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import LEADS_12, ROOT, make_record

from paperecg.pipeline.data import UnusableDataError
from paperecg.records.io import find_records, load_signal

PY = sys.executable


def run_script(args, cwd=ROOT, env_extra=None):
    env = {**os.environ, "PYTHONPATH": ROOT, **(env_extra or {})}
    return subprocess.run([PY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def snapshot(folder):
    """Every file under folder with its size and mtime: to prove nothing was written there."""
    out = {}
    for root, _d, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, folder)] = (st.st_size, st.st_mtime_ns)
    return out


def png(path, mode="RGB", size=(220, 170)):
    from PIL import Image

    arr = np.full((size[1], size[0]), 240, np.uint8)
    arr[size[1] // 2, :] = 0
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def train_folder(tmp_path):
    data = tmp_path / "train"
    labels = [("NORM",), ("CD", "STTC"), ("NORM", "PVC"), ("Old MI",)]
    for i, ls in enumerate(labels):
        make_record(data / "sub", f"{i:05d}_lr", labels=ls, seed=i)
    return data


def test_train_then_run_end_to_end(tmp_path, train_folder):
    model = tmp_path / "model"
    before = snapshot(train_folder)
    r = run_script(["train_model.py", "-d", str(train_folder), "-m", str(model), "-v"])
    assert r.returncode == 0, r.stderr
    r = run_script(["run_model.py", "-d", str(train_folder), "-m", str(model), "-o", str(tmp_path / "out"), "-v"])
    assert r.returncode == 0, r.stderr
    assert snapshot(train_folder) == before  # nothing written into the data folder
    outs = find_records(tmp_path / "out")
    assert outs == find_records(train_folder) == ["sub/00000_lr", "sub/00001_lr", "sub/00002_lr", "sub/00003_lr"]
    sig, fields = load_signal(str(tmp_path / "out" / outs[0]))
    assert sig.shape == (1000, 12) and np.isnan(sig).all()  # honest "not digitized"
    header = open(tmp_path / "out" / (outs[0] + ".hea")).read()
    # the prevalence model names every class it saw, in challenge order
    assert header.rstrip().split("\n")[-1] == "# Labels: NORM, Old MI, STTC, CD, PVC"


def test_training_learns_from_the_data(tmp_path):
    from paperecg.pipeline import entry, training

    a, b = tmp_path / "a", tmp_path / "b"
    make_record(a, "00001_lr", labels=("NORM",))
    make_record(b, "00001_lr", labels=("AFIB/AFL", "CD"))
    training.train(str(a), str(tmp_path / "ma"))
    training.train(str(b), str(tmp_path / "mb"))
    rec = str(a / "00001_lr")
    assert entry.run(rec, *entry.load(str(tmp_path / "ma")))[1] == ["NORM"]
    assert entry.run(rec, *entry.load(str(tmp_path / "mb")))[1] == ["CD", "AFIB/AFL"]


def test_training_refuses_unusable_data(tmp_path):
    from paperecg.pipeline import training

    (tmp_path / "empty").mkdir()
    with pytest.raises(UnusableDataError, match="no records"):
        training.train(str(tmp_path / "empty"), str(tmp_path / "m"))
    make_record(tmp_path / "nolabels", labels=None)
    with pytest.raises(UnusableDataError, match="Labels"):
        training.train(str(tmp_path / "nolabels"), str(tmp_path / "m"))
    make_record(tmp_path / "nosignal", with_signal=False)
    with pytest.raises(UnusableDataError, match="usable"):
        training.train(str(tmp_path / "nosignal"), str(tmp_path / "m"))
    r = run_script(["train_model.py", "-d", str(tmp_path / "missing"), "-m", str(tmp_path / "m")])
    assert r.returncode != 0 and "not found" in r.stderr


FAILING_TEAM_CODE = '''
import numpy as np
def train_models(d, m, v): pass
def load_models(m, v): return None, None
def run_models(record, dm, cm, verbose):
    if record.endswith("00001_lr"):
        raise RuntimeError("boom")
    return np.zeros((1000, 12)), ["NORM"]
'''


@pytest.mark.parametrize("allow_failures", [True, False])
def test_run_model_with_a_raising_team_code(tmp_path, allow_failures):
    work = tmp_path / "work"
    work.mkdir()
    for f in ("run_model.py", "helper_code.py"):
        shutil.copy(os.path.join(ROOT, f), work / f)
    (work / "team_code.py").write_text(FAILING_TEAM_CODE)
    data = tmp_path / "data"
    for i in range(3):
        make_record(data, f"{i:05d}_lr", seed=i)
    args = ["run_model.py", "-d", str(data), "-m", str(tmp_path / "m"), "-o", str(tmp_path / "out")]
    r = run_script(args + (["-f"] if allow_failures else []), cwd=work,
                   env_extra={"PYTHONPATH": f"{work}{os.pathsep}{ROOT}"})
    if allow_failures:
        assert r.returncode == 0, r.stderr
        assert os.path.isfile(tmp_path / "out" / "00001_lr.hea")  # header still copied
        assert not os.path.exists(tmp_path / "out" / "00001_lr.dat")  # but no signal
        assert os.path.isfile(tmp_path / "out" / "00002_lr.dat")  # and the loop went on
    else:
        assert r.returncode != 0 and "boom" in r.stderr
        assert not os.path.exists(tmp_path / "out" / "00002_lr.hea")


def bad_input_corpus(folder):
    """Records that must not crash run_model.py, each with what makes it bad."""
    folder.mkdir(parents=True)
    make_record(folder, "missing_img", images=("nothere.png",))
    make_record(folder, "corrupt_img", images=("corrupt_img-0.png",))
    (folder / "corrupt_img-0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    make_record(folder, "no_image_line")
    make_record(folder, "zero_size", images=("zero_size-0.png",))
    (folder / "zero_size-0.png").write_bytes(b"")
    for mode in ("L", "RGBA", "P", "I;16"):
        name = f"mode_{mode.replace(';', '')}"
        make_record(folder, name, images=(f"{name}-0.png",))
        png(folder / f"{name}-0.png", mode)
    make_record(folder, "fs250", fs_hz=250.0, images=("fs250-0.png",))
    png(folder / "fs250-0.png")
    make_record(folder, "fs500", fs_hz=500.0, lead_names=[n.upper() for n in LEADS_12])
    make_record(folder, "lower", lead_names=[n.lower() for n in LEADS_12])
    make_record(folder, "short", lead_names=["I", "II", "V1"], seconds=2.5)


def test_bad_inputs_never_crash_run_model(tmp_path, train_folder):
    from paperecg.tools.hidden_view import make_hidden_view

    model = tmp_path / "model"
    assert run_script(["train_model.py", "-d", str(train_folder), "-m", str(model)]).returncode == 0
    bad = tmp_path / "bad"
    bad_input_corpus(bad)
    hidden = tmp_path / "hidden"
    make_hidden_view(str(bad), str(hidden))
    before = snapshot(hidden)
    r = run_script(["run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr  # no -f: any exception would have stopped the run
    assert snapshot(hidden) == before
    for rel in find_records(hidden):
        sig, fields = load_signal(str(tmp_path / "out" / rel))
        assert sig is not None and sig.shape == (fields["sig_len"], fields["n_sig"])
        assert not np.isinf(sig).any()
