"""Several training processes for the segmenter and the classifier, launched from inside `train_models`.

The organizers run `python train_model.py -d DATA -m MODEL` (their own copy), one process. When more than
one process is wanted (`hardware.ddp_procs_wanted`: PAPERECG_DDP_PROCS, else one per usable GPU), training.train
trains the prevalence model and the lead-name detector itself, then runs

    python -m torch.distributed.run --standalone --nproc_per_node N -m paperecg.pipeline.training DATA MODEL [-v]

for the segmenter and the classifier (DistributedDataParallel; nccl on GPUs, gloo on the CPU). Every rank
trains, rank 0 alone writes the model folder. If that run fails, training.train trains them in its own process
(the segmenter resumes from the checkpoint rank 0 left).

`torchrun --standalone --nproc_per_node N train_model.py -d DATA -m MODEL` works too: then the ranks are made
by the caller and rank 0 also trains the detector while the others wait.
"""
from __future__ import annotations

import os
import subprocess
import sys

DDP_COMPONENTS = ("segmenter", "classifier")
# Set in the ranks this module launches: training.train then leaves staging and the final move to the parent.
DDP_CHILD_ENV = "PAPERECG_DDP_CHILD"
# the cache of digitized training pages the parent filled for the classifier's fusion (pipeline/digitized.py)
DIGITIZED_ENV = "PAPERECG_DIGITIZED_DIR"


def _repo_root() -> str:
    """The folder holding the paperecg package: the child ranks must import this very copy."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def torchrun_command(data_folder: str, model_folder: str, procs: int, verbose: bool) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
            "-m", "paperecg.pipeline.training", os.path.abspath(data_folder), os.path.abspath(model_folder),
            *(["-v"] if verbose else [])]


def child_env(components: list[str], base: dict[str, str] | None = None, digitized_dir: str | None = None
              ) -> dict[str, str]:
    """The ranks' environment: only the components asked for, no further launch, this package importable,
    the parent's digitized training pages (if any)."""
    env = dict(os.environ if base is None else base)
    if digitized_dir:
        env[DIGITIZED_ENV] = os.path.abspath(digitized_dir)
    env["PAPERECG_COMPONENTS"] = ",".join(components)
    env["PAPERECG_DDP_PROCS"] = "1"
    env[DDP_CHILD_ENV] = "1"
    root = _repo_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _release_gpu_memory() -> None:
    """The detector trained in this process: hand its cached GPU memory back before rank 0 needs cuda:0."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def launch(data_folder: str, model_folder: str, components: list[str], procs: int, verbose: bool,
           log=print, digitized_dir: str | None = None) -> bool:
    """Train `components` in `procs` torchrun processes; True when every rank finished."""
    cmd = torchrun_command(data_folder, model_folder, procs, verbose)
    log(f"Training {', '.join(components)} in {procs} processes: {' '.join(cmd)}")
    _release_gpu_memory()
    try:
        rc = subprocess.run(cmd, env=child_env(components, digitized_dir=digitized_dir), cwd=_repo_root()).returncode
    except OSError as e:
        log(f"torchrun could not start: {e}")
        return False
    if rc != 0:
        log(f"torchrun exited with status {rc}")
    return rc == 0
