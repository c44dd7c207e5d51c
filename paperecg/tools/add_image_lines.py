"""Add '# Image:' lines to headers for the images found beside them.

    python -m paperecg.tools.add_image_lines -i DATA -o OUTPUT      (copies the folder, then edits the copy)
    python -m paperecg.tools.add_image_lines -i DATA --in-place

An image belongs to record NAME when its file name is NAME.<ext> or NAME-<anything>.<ext>. Existing
'# Image:' lines are replaced. Records without images keep their header unchanged.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from paperecg.records.images import IMAGE_EXTENSIONS
from paperecg.records.io import find_records, load_header, save_text



def images_beside(record_path: str) -> list[str]:
    folder, name = os.path.split(record_path)
    found = []
    for f in sorted(os.listdir(folder or ".")):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS and (stem == name or stem.startswith(name + "-")):
            found.append(f)
    return found


def with_image_line(header: str, images: list[str]) -> str:
    lines = [l for l in header.rstrip("\n").split("\n") if not l.startswith(("# Image:", "#Image:"))]
    return "\n".join(lines + ["# Image: " + ", ".join(images)]) + "\n"


def add_image_lines(folder: str) -> int:
    """Edit the headers in `folder` in place; returns how many gained an image line."""
    n = 0
    for rel in find_records(folder):
        rec = os.path.join(folder, rel)
        images = images_beside(rec)
        if images:
            save_text(rec + ".hea", with_image_line(load_header(rec), images))
            n += 1
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", required=True)
    p.add_argument("-o", "--output", help="copy INPUT here first and edit the copy")
    p.add_argument("--in-place", action="store_true", help="edit the headers inside INPUT")
    a = p.parse_args(argv)
    if bool(a.output) == bool(a.in_place):
        p.error("give exactly one of -o OUTPUT or --in-place")
    folder = a.input
    if a.output:
        if os.path.abspath(a.output) == os.path.abspath(a.input):
            p.error("OUTPUT equals INPUT: use --in-place")
        shutil.copytree(a.input, a.output, dirs_exist_ok=True)
        folder = a.output
    print(f"added image lines to {add_image_lines(folder)} headers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
