#!/usr/bin/env python
"""Score model outputs like the organizers' evaluate_model.py (PhysioNet Challenge 2024, final version).

    python evaluate_model.py -d REFERENCE_FOLDER -o OUTPUT_FOLDER [-n] [-x] [-s SCORE_FILE] [--details DIR]

Prints 'SNR: x.xxx' and 'F-measure: x.xxx' (with -x also the non-ranking metrics), or writes that text to
SCORE_FILE. --details DIR adds per_lead.tsv (SNR per record and lead, with the alignment found) and
per_class.tsv (F, TP, FP, FN, TN per class).
"""
import argparse
import sys

from paperecg.score.evaluate import evaluate_folders, format_scores, write_details


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate the Challenge models.")
    parser.add_argument("-d", "--folder_ref", type=str, required=True, help="reference records (signals, labels)")
    parser.add_argument("-o", "--folder_est", type=str, required=True, help="model outputs (run_model.py -o)")
    parser.add_argument("-n", "--no_shift", action="store_true", help="score without the alignment step")
    parser.add_argument("-x", "--extra_scores", action="store_true", help="add the non-ranking metrics")
    parser.add_argument("-s", "--score_file", type=str, required=False, help="write the scores here")
    parser.add_argument("--details", type=str, default=None, help="folder for per_lead.tsv and per_class.tsv")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    return parser


def run(args: argparse.Namespace) -> None:
    result = evaluate_folders(args.folder_ref, args.folder_est, align=not args.no_shift,
                              extra=args.extra_scores, progress=args.progress)
    output_string = format_scores(result, args.extra_scores)
    if args.details:
        write_details(result, args.details)
    if args.score_file:
        with open(args.score_file, "w") as f:
            f.write(output_string)
    else:
        print(output_string)


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
