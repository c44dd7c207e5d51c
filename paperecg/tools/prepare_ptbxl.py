"""Prepare PTB-XL records for the challenge: write '# Age/Sex/Height/Weight:' and '# Labels:' lines.

    python -m paperecg.tools.prepare_ptbxl -i PTBXL_RECORDS -d ptbxl_database.csv -s scp_statements.csv \
        -o OUTPUT [--sl-statements 12sl_statements.csv --sl-mapping 12slv23ToSNOMED.csv]

Labels follow the challenge rules (see paperecg.records.ptbxl.challenge_labels). Without the PTB-XL+ 12SL
files every MI is 'Old MI'. The input folder is never modified unless --in-place is given; otherwise headers
are rewritten into OUTPUT and the signal files copied beside them.
"""
from __future__ import annotations

import argparse
import ast
import csv
import os
import shutil
import sys

from tqdm import tqdm

from paperecg.records.header import cast_int_float_unknown, get_signal_files_from_header
from paperecg.records.io import find_records, load_header, save_text
from paperecg.records.ptbxl import challenge_labels, read_database, read_diagnostic_classes

# 12SL statement numbers of acute myocardial infarction (PTB-XL+ 12SL v23), as used by the challenge.
ACUTE_MI_STATEMENTS = {821, 822, 823, 827, 829, 902, 903, 904, 963, 964, 965, 966, 967, 968}
_REWRITTEN = ("# Age:", "# Sex:", "# Height:", "# Weight:", "# Labels:", "#Age:", "#Sex:", "#Height:",
              "#Weight:", "#Labels:")


def read_acute_mi_ids(sl_statements_csv: str, sl_mapping_csv: str) -> set[int]:
    """ecg_ids whose 12SL statements include an acute-MI statement."""
    acronyms = set()
    with open(sl_mapping_csv, newline="") as f:
        for row in csv.DictReader(f):
            try:
                if int(float(row["StatementNumber"])) in ACUTE_MI_STATEMENTS:
                    acronyms.add(row["Acronym"].strip())
            except (KeyError, ValueError):
                continue
    ids = set()
    with open(sl_statements_csv, newline="") as f:
        for row in csv.DictReader(f):
            raw = row.get("statements", "")
            try:
                statements = {str(s).strip() for s in ast.literal_eval(raw)}
            except (ValueError, SyntaxError):
                statements = {s.strip(" '\"[]") for s in raw.split(",")}
            if statements & acronyms:
                ids.add(int(float(row["ecg_id"])))
    return ids


# PTB-XL stores ages above 89 as 300 (de-identification); the challenge headers write them as 90.
PTBXL_AGE_CAP = 90


def _format_age(age) -> str:
    return _format_value(None if age is None else min(age, PTBXL_AGE_CAP))


def _format_value(value) -> str:
    return "Unknown" if value is None else str(cast_int_float_unknown(value))


def rewrite_header(header: str, age, sex, height, weight, labels: list[str]) -> str:
    """Record and signal lines kept; other comments kept; demographics and labels written last."""
    lines = header.split("\n")
    record_line = lines[0].rstrip("\n")
    signal_lines = [l.strip() for l in lines[1:] if l.strip() and not l.startswith("#")]
    other_comments = [l.strip() for l in lines[1:] if l.startswith("#") and not l.startswith(_REWRITTEN)]
    out = [record_line] + signal_lines + other_comments + [
        f"# Age: {_format_age(age)}",
        f"# Sex: {sex or 'Unknown'}",
        f"# Height: {_format_value(height)}",
        f"# Weight: {_format_value(weight)}",
        f"# Labels: {', '.join(labels)}",
    ]
    return "\n".join(out) + "\n"


def prepare(input_folder: str, database_csv: str, statements_csv: str, output_folder: str | None,
            sl_statements: str | None = None, sl_mapping: str | None = None, verbose: bool = True) -> int:
    """Returns the number of headers written. Records missing from the database are skipped (reported)."""
    db = read_database(database_csv)
    classes = read_diagnostic_classes(statements_csv)
    acute_ids = read_acute_mi_ids(sl_statements, sl_mapping) if sl_statements and sl_mapping else set()
    written = 0
    for rel in tqdm(find_records(input_folder), disable=not verbose, desc="prepare"):
        entry = db.get(os.path.basename(rel))
        if entry is None:
            print(f"skipped {rel}: not in {database_csv}", file=sys.stderr)
            continue
        src = os.path.join(input_folder, rel)
        header = load_header(src)
        labels = challenge_labels(entry.scp_codes, classes, acute_mi=entry.ecg_id in acute_ids)
        new_header = rewrite_header(header, entry.age, entry.sex, entry.height, entry.weight, labels)
        dst = os.path.join(output_folder, rel) if output_folder else src
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        save_text(dst + ".hea", new_header)
        if output_folder:
            for name in get_signal_files_from_header(header):
                s = os.path.join(os.path.dirname(src), name)
                if os.path.isfile(s):
                    shutil.copy2(s, os.path.join(os.path.dirname(dst), name))
        written += 1
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", required=True, help="folder of PTB-XL WFDB records (searched recursively)")
    p.add_argument("-d", "--database", required=True, help="ptbxl_database.csv")
    p.add_argument("-s", "--statements", required=True, help="scp_statements.csv")
    p.add_argument("-o", "--output", help="output folder (headers rewritten, signal files copied)")
    p.add_argument("--in-place", action="store_true", help="rewrite the headers inside the input folder")
    p.add_argument("--sl-statements", help="PTB-XL+ 12sl_statements.csv (for Acute MI)")
    p.add_argument("--sl-mapping", help="PTB-XL+ 12slv23ToSNOMED.csv (for Acute MI)")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    if bool(a.output) == bool(a.in_place):
        p.error("give exactly one of -o OUTPUT or --in-place")
    if a.output and os.path.abspath(a.output) == os.path.abspath(a.input):
        p.error("OUTPUT equals INPUT: use --in-place to rewrite the input folder")
    n = prepare(a.input, a.database, a.statements, a.output, a.sl_statements, a.sl_mapping, not a.quiet)
    print(f"wrote {n} headers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
