"""Bit-identical check: does a change alter what the entry outputs?

    python bench/identical.py --write BASELINE.json [--limit 8] [--sets clean,photo,...]
    python bench/identical.py --compare BASELINE.json [--limit 8] [--sets ...]

Runs the entry (`pipeline.entry.load` + `run`, as team_code.py does) on the first `--limit` records of each
set (the six eik-dev sets and photos-real-ref by default; nothing is written into the data folders) and takes a
fingerprint of each record's output: the SHA-256 of the digitized signal's float64 bytes (NaN included, shape
and dtype part of the hash) and the labels. --write saves the fingerprints; --compare reports every record
whose fingerprint differs from the saved one. Last line: one JSON object (records, differing, missing).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paperecg.records.io import find_records  # noqa: E402

DATA = "/work/shared/data"
SETS = {name: os.path.join(DATA, "eik-dev", name) for name in ("clean", "distorted", "6x2", "12x1", "lowdpi", "photo")}
SETS["photos-real-ref"] = os.path.join(DATA, "photos-real-ref")


def signal_hash(signal: np.ndarray | None) -> str:
    """SHA-256 of the array's shape, dtype and bytes (C order); 'none' for no signal."""
    if signal is None:
        return "none"
    a = np.ascontiguousarray(signal)
    h = hashlib.sha256(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def fingerprints(sets: dict[str, str], limit: int, model: str, log=print) -> dict[str, dict]:
    from paperecg.pipeline import entry

    digitizer, classifier = entry.load(model)
    out: dict[str, dict] = {}
    for name, folder in sets.items():
        for rel in find_records(folder)[:limit]:
            t0 = time.time()
            signal, labels = entry.run(os.path.join(folder, rel), digitizer, classifier)
            key = f"{name}/{rel}"
            out[key] = {"signal": signal_hash(signal), "labels": list(labels) if labels is not None else None}
            log(f"{key}: {out[key]['signal'][:16]} {out[key]['labels']} ({time.time() - t0:.1f} s)")
    return out


def compare(base: dict[str, dict], now: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(records whose fingerprint differs, records in `now` missing from the baseline)."""
    differing = [k for k in now if k in base and base[k] != now[k]]
    missing = [k for k in now if k not in base]
    return differing, missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", help="save the fingerprints to this JSON file")
    g.add_argument("--compare", help="compare against the fingerprints saved in this JSON file")
    p.add_argument("--limit", type=int, default=8, help="first N records of each set")
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    p.add_argument("--model", default=os.path.join(ROOT, "model"))
    a = p.parse_args(argv)
    sets = {s: SETS[s] for s in a.sets.split(",") if s}
    now = fingerprints(sets, a.limit, a.model, log=lambda m: print(m, file=sys.stderr, flush=True))
    if a.write:
        with open(a.write, "w") as f:
            json.dump(now, f, indent=1, sort_keys=True)
        print(json.dumps({"records": len(now), "written": a.write}))
        return 0
    with open(a.compare) as f:
        base = json.load(f)
    differing, missing = compare(base, now)
    for k in differing:
        print(f"DIFFERS {k}: {base[k]} -> {now[k]}", file=sys.stderr)
    print(json.dumps({"records": len(now), "differing": len(differing), "missing": len(missing),
                      "identical": not differing and not missing}))
    return 1 if differing or missing else 0


if __name__ == "__main__":
    sys.exit(main())
