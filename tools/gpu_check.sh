#!/usr/bin/env bash
# Device check for a GPU machine in one call of at most 10 minutes: see paperecg/tools/gpu_check.py.
#   bash tools/gpu_check.sh [OUT.json] [extra gpu_check arguments]
# The JSON is rewritten after every stage, so even a run cut off by the limit leaves what it measured.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT="${1:-gpu_check.json}"
shift || true
PY="${PYTHON:-python}"
timeout --kill-after=10 590 "$PY" -m paperecg.tools.gpu_check --out "$OUT" --deadline-s 560 "$@"
rc=$?
[ -f "$OUT" ] && cat "$OUT"
exit $rc
