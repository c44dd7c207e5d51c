"""Make the hidden view of a folder: what inference sees on the organizers' test set.

    python -m paperecg.tools.hidden_view -i DATA -o HIDDEN

For every record: the header is stripped (record line keeps name, signal count, fs and length; signal lines
lose init value, checksum and block size, leaving blanks; only '# Image:' comment lines survive) and its
images are copied. No signal files, no labels, no demographics. The input folder is never modified.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from paperecg.records.header import get_image_files_from_header, get_num_signals
from paperecg.records.io import find_records, load_header, save_text


def hide_header(header: str) -> str:
    lines = header.rstrip("\n").split("\n")
    record_line = " ".join(lines[0].split()[:4])
    n = get_num_signals(header) or 0
    out = [record_line]
    for line in lines[1:1 + n]:
        f = line.split()
        if len(f) >= 9:
            # file fmt gain res zero [init checksum block] name: the bracketed fields become blanks
            out.append(" ".join(f[:5] + ["", "", ""] + f[8:9]))
        else:
            out.append(line)
    out += [l for l in lines[1 + n:] if l.startswith(("# Image:", "#Image:"))]
    return "\n".join(out) + "\n"


def make_hidden_view(input_folder: str, output_folder: str) -> int:
    if os.path.abspath(input_folder) == os.path.abspath(output_folder):
        raise ValueError("output folder must differ from the input folder")
    n = 0
    for rel in find_records(input_folder):
        src = os.path.join(input_folder, rel)
        dst = os.path.join(output_folder, rel)
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        header = load_header(src)
        save_text(dst + ".hea", hide_header(header))
        for image in get_image_files_from_header(header):
            s = os.path.join(os.path.dirname(src), image)
            if os.path.isfile(s):
                d = os.path.join(os.path.dirname(dst), image)
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copy2(s, d)
        n += 1
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", required=True)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    print(f"hid {make_hidden_view(a.input, a.output)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
