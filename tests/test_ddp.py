"""Multi-process training through train_model.py: PAPERECG_DDP_PROCS=2 makes train_models launch
`torchrun --standalone --nproc_per_node 2` (gloo on the CPU) for the segmenter and the classifier.

A sitecustomize probe, loaded by every rank, records (a) each rank's trained weights (modules wrapped in
DistributedDataParallel and the classifier's signal-fold networks) and (b) every write a rank other than 0
makes into the model folder (Python's audit hook for open/mkdir/rename/remove, plus torch.save and
safetensors' save_file, which write from C++/Rust)."""
import ast
import json
import os
import textwrap

import pytest
from conftest import ROOT
from test_harness import run_script

from paperecg.pipeline.ddp import child_env, torchrun_command
from paperecg.tools.make_demo_data import make_demo_data

PROBE = textwrap.dedent('''
    import atexit, hashlib, json, os, sys

    if os.environ.get("DDP_PROBE_OUT") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        import safetensors.torch as st

        RANK = int(os.environ["RANK"])
        MODEL = os.path.realpath(os.environ["DDP_PROBE_MODEL"])
        WRITES, MODULES, CLASSIFIERS = [], [], []
        WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def inside(path):
            try:
                return os.path.realpath(os.fsdecode(path)).startswith(MODEL)
            except (TypeError, ValueError):
                return False

        def note(what, path):
            if RANK != 0 and inside(path):
                WRITES.append(f"{what} {os.fsdecode(path)}")

        def hook(event, args):
            if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
                mode, flags = args[1] or "", args[2] or 0
                if any(c in mode for c in "wax+") or flags & WRITE_FLAGS:
                    note("open", args[0])
            elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree"):
                note(event, args[0])

        sys.addaudithook(hook)

        def wrap(fn, what, arg):
            def inner(*a, **k):
                target = k.get(arg, a[1] if len(a) > 1 else None)
                if isinstance(target, (str, bytes, os.PathLike)):
                    note(what, target)
                return fn(*a, **k)
            return inner

        torch.save = wrap(torch.save, "torch.save", "f")
        st.save_file = wrap(st.save_file, "save_file", "filename")

        ddp_init = torch.nn.parallel.DistributedDataParallel.__init__

        def capture(self, module, *a, **k):
            MODULES.append(module)
            ddp_init(self, module, *a, **k)

        torch.nn.parallel.DistributedDataParallel.__init__ = capture
        import paperecg.classify.model as cm

        clf_init = cm.Classifier.__init__

        def capture_clf(self, *a, **k):
            clf_init(self, *a, **k)
            CLASSIFIERS.append(self)

        cm.Classifier.__init__ = capture_clf

        def digest(module):
            h = hashlib.sha256()
            for name, p in sorted(module.named_parameters()):
                h.update(name.encode())
                h.update(p.detach().float().cpu().numpy().tobytes())
            return h.hexdigest()

        @atexit.register
        def report():
            out = {"rank": RANK, "writes": WRITES,
                   "ddp_modules": [[type(m).__name__, digest(m)] for m in MODULES],
                   "signal_nets": [digest(n) for c in CLASSIFIERS for n in c.signal_nets]}
            # one launch per part (the segmenter, then the classifier): a report per rank and process
            with open(os.path.join(os.environ["DDP_PROBE_OUT"], f"rank{RANK}-{os.getpid()}.json"), "w") as f:
                json.dump(out, f)
''')


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = root / "data"
    make_demo_data(str(data), records=4, seed=7, verbose=False)
    probe_dir, reports, model = root / "probe", root / "reports", root / "model"
    probe_dir.mkdir()
    reports.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    config = root / "toy.json"
    config.write_text(json.dumps({"segmenter_minutes": 0.08, "classifier_minutes": 0.12}))
    env = {"PYTHONPATH": os.pathsep.join([str(probe_dir), ROOT]), "PAPERECG_PROFILE": "tiny",
           "PAPERECG_COMPONENTS": "segmenter,classifier", "PAPERECG_DDP_PROCS": "2", "PAPERECG_THREADS": "1", "PAPERECG_CONFIG": str(config), "DDP_PROBE_OUT": str(reports),
           "DDP_PROBE_MODEL": str(model)}
    # the probe reaches the ranks through the PYTHONPATH they inherit
    r = run_script(["train_model.py", "-d", str(data), "-m", str(model), "-v"], env_extra=env)
    return r, model, reports


@pytest.fixture(scope="module")
def ddp_reports(ddp_run):
    r, _model, reports = ddp_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-4000:]
    found = {0: [], 1: []}
    for p in sorted(reports.glob("rank*.json"), key=lambda p: p.stat().st_mtime):
        rep = json.loads(p.read_text())
        found.setdefault(rep["rank"], []).append(rep)
    assert sorted(found) == [0, 1] and all(found.values()), (sorted(found), r.stderr[-3000:])

    def merged(reps):  # the rank's launches, in the order they ran
        return {"rank": reps[0]["rank"], "writes": [w for rep in reps for w in rep["writes"]],
                "ddp_modules": [m for rep in reps for m in rep["ddp_modules"]],
                "signal_nets": [n for rep in reps for n in rep["signal_nets"]]}

    return merged(found[0]), merged(found[1])


def test_train_models_launches_torchrun(ddp_run):
    r, model, _reports = ddp_run
    log = r.stdout + r.stderr
    assert "in 2 processes" in log and "torch.distributed.run --standalone --nproc_per_node 2" in log, log[-3000:]
    assert "multi-process training failed" not in log
    for sub in ("segmenter", "classifier"):
        assert os.path.isfile(model / sub / "config.json"), sub
    assert os.path.isfile(model / "prevalence.json")
    with open(model / "segmenter" / "train_history.json") as f:
        # two steps at least: DDP's gradient buckets and the shared stop/lr all-reduce ran more than once
        assert json.load(f)["state"]["step"] >= 2


def test_ranks_end_with_identical_weights(ddp_reports):
    rank0, rank1 = ddp_reports
    kinds = [k for k, _ in rank0["ddp_modules"]]
    assert kinds == ["ResUNetCBAM", "ResNet"], kinds  # the segmenter and the image branch ran under DDP
    assert rank0["ddp_modules"] == rank1["ddp_modules"]
    assert len(rank0["signal_nets"]) >= 2 and rank0["signal_nets"] == rank1["signal_nets"]


def test_only_rank_zero_writes_the_model_folder(ddp_reports):
    _rank0, rank1 = ddp_reports
    assert rank1["writes"] == [], rank1["writes"]


def test_launch_command_and_environment():
    cmd = torchrun_command("d", "m", 3, verbose=True)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3"]
    assert cmd[-4:-1] == ["paperecg.pipeline.training", os.path.abspath("d"), os.path.abspath("m")]
    env = child_env(["segmenter"], base={"PYTHONPATH": "/x"})
    assert env["PAPERECG_COMPONENTS"] == "segmenter" and env["PAPERECG_DDP_PROCS"] == "1"
    assert env["PYTHONPATH"].endswith(os.pathsep + "/x")


def test_train_model_documents_multi_gpu():
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "train_model.py")) as f:
        doc = ast.get_docstring(ast.parse(f.read()))
    assert "PAPERECG_DDP_PROCS" in doc and "torchrun" in doc and "--nproc_per_node" in doc
