#!/usr/bin/env python
"""Run the trained models: python run_model.py -d DATA -m MODEL -o OUTPUT [-v] [-f]

Same CLI and behaviour as the organizers' script: records found recursively and sorted; the output tree
mirrors the input; the input header is copied, then the signal (if not None) and labels (if not None) are
written. With -f a failing run_models gives (None, None) for that record; without it the run stops.

Our addition: `--jobs N` (or PAPERECG_JOBS=N) spreads the records over N worker processes (joblib), one
GPU each where there are GPUs (paperecg/pipeline/parallel.py); the outputs are the same as with one process.
"""
import argparse
import functools
import os
import sys

from helper_code import find_records, load_header
from paperecg.pipeline.parallel import jobs_requested, parse_shard, run_sharded, shard_records
from paperecg.records.io import save_outputs
from team_code import load_models, run_models


def get_parser():
    parser = argparse.ArgumentParser(description="Run the trained Challenge model(s).")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-f", "--allow_failures", action="store_true")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="worker processes (default: PAPERECG_JOBS or 1); one GPU each where there are GPUs")
    parser.add_argument("--shard", type=str, default=None, help=argparse.SUPPRESS)  # i/N, set for workers
    return parser


def run_shard(args, shard: str) -> None:
    """One worker's part of a --jobs run: every N-th record."""
    run(argparse.Namespace(**{**vars(args), "shard": shard}))


def run(args):
    jobs = jobs_requested(args.jobs)
    if jobs > 1 and args.shard is None:
        run_sharded(functools.partial(run_shard, args), jobs)
        return
    if args.verbose:
        print("Loading the Challenge model...")
    digitization_model, classification_model = load_models(args.model_folder, args.verbose)

    records = find_records(args.data_folder)
    if len(records) == 0:
        raise FileNotFoundError("No data were provided.")
    if args.shard is not None:
        records = shard_records(records, *parse_shard(args.shard))
    os.makedirs(args.output_folder, exist_ok=True)

    if args.verbose:
        print("Running the Challenge model(s) on the Challenge data...")
    width = len(str(len(records)))
    for i, name in enumerate(records):
        if args.verbose:
            print(f"- {i + 1:>{width}}/{len(records)}: {name}...")
        data_record = os.path.join(args.data_folder, name)
        output_record = os.path.join(args.output_folder, name)
        try:
            signal, labels = run_models(data_record, digitization_model, classification_model, args.verbose)
        except Exception:
            if args.allow_failures:
                if args.verbose:
                    print("... failed.")
                signal, labels = None, None
            else:
                raise
        # Outside the try, as in the organizers' script: a failure here stops the run even with -f.
        save_outputs(output_record, load_header(data_record), signal, labels)

    if args.verbose:
        print("Done.")


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
