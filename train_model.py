#!/usr/bin/env python
"""Train the models: python train_model.py -d DATA -m MODEL [-v]   (same CLI as the organizers' script).

Several GPUs (or CPU processes): the segmenter and the classifier train with DistributedDataParallel in one
process per GPU, launched from inside team_code.train_models, so the organizers' own copy of this script
needs nothing extra:

    python train_model.py -d DATA -m MODEL -v                         # one process per usable GPU (automatic)
    PAPERECG_DDP_PROCS=2 python train_model.py -d DATA -m MODEL -v    # force the count (on the CPU: gloo)
    PAPERECG_DDP_PROCS=1 python train_model.py -d DATA -m MODEL -v    # one process, no torchrun

train_models trains the prevalence model and the lead-name detector itself, then runs
`python -m torch.distributed.run --standalone --nproc_per_node N -m paperecg.pipeline.training DATA MODEL` for the
rest; if that fails it trains them in its own process. Launching the ranks yourself works too:

    torchrun --standalone --nproc_per_node 2 train_model.py -d DATA -m MODEL -v

Either way every rank trains and rank 0 alone writes the model folder (see paperecg/pipeline/ddp.py).
"""
import argparse
import sys

from team_code import train_models


def get_parser():
    parser = argparse.ArgumentParser(description="Train the Challenge model(s).")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(args):
    train_models(args.data_folder, args.model_folder, args.verbose)


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
