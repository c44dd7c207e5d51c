#!/usr/bin/env bash
# The organizers' run over a corpus of bad inputs (paperecg/tools/bad_inputs.py: unreadable, odd and turned
# pages, odd headers), with the data mounted read-only and no network, as challenge_sim.sh does for good data.
# Prints one line per case and a summary; fails if any record lacks a loadable output (header copy + labels,
# and a signal of the header's shape, finite, inside its format's range, wherever the header describes one),
# if run_models raises, or if anything is written outside the model and output folders. The two kinds the
# organizers' own code rejects (Latin-1 comment, space in the record's name) each run alone and are reported.
#
#   bash tools/bad_input_sim.sh                 (make bad-input-sim)
# Environment: SIM_PYTHON=path/to/python skips building a fresh venv from requirements.txt;
#              SIM_MODEL=folder runs that model (default: the shipped model/); SIM_KEEP=1 keeps the work folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/bad-input-sim.XXXXXX)
[ "${SIM_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
echo "work folder: $WORK"

# 1. A copy of the tracked tree (what the organizers' image holds) and its Python.
mkdir -p "$WORK/challenge" "$WORK/home" "$WORK/tmp" "$WORK/logs/rejected"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$WORK/challenge")
if [ -n "${SIM_PYTHON:-}" ]; then
  PY=$SIM_PYTHON
else
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q --no-cache-dir -r "$WORK/challenge/requirements.txt"
  PY="$WORK/venv/bin/python"
fi
if [ -n "${SIM_MODEL:-}" ]; then rm -rf "$WORK/challenge/model"; cp -r "$SIM_MODEL" "$WORK/challenge/model"; fi

# 2. The corpus.
cd "$WORK/challenge"
"$PY" -m paperecg.tools.bad_inputs make --out "$WORK/bad"

# 3. Run with no network and the corpus read-only; everything else is watched. No -f: a raising run_models
#    would stop the run. Each rejected kind runs alone, since it stops the organizers' loop.
touch "$WORK/marker"; sleep 1
set +e
unshare -rnm bash -c "
  mount --bind '$WORK/bad' '$WORK/bad' && mount -o remount,bind,ro '$WORK/bad' || exit 99
  export HOME='$WORK/home' TMPDIR='$WORK/tmp' OMP_NUM_THREADS=\${OMP_NUM_THREADS:-1}
  '$PY' run_model.py -d '$WORK/bad/corpus' -m model -o '$WORK/outputs' -v > '$WORK/logs/corpus.out' 2>&1
  echo \$? > '$WORK/logs/corpus.rc'
  for d in '$WORK'/bad/rejected/*/; do
    kind=\$(basename \"\$d\")
    '$PY' run_model.py -d \"\$d\" -m model -o '$WORK/outputs_rejected/'\"\$kind\" > '$WORK/logs/rejected/'\"\$kind\"'.log' 2>&1
  done
"
ns_rc=$?
set -e
[ "$ns_rc" = 0 ] || { echo "FAIL: could not set up the sandbox (unshare/mount rc $ns_rc)"; exit 1; }
run_rc=$(cat "$WORK/logs/corpus.rc")
grep -h '^\[paperecg\]' "$WORK/logs/corpus.out" | sed 's/^/  /' | head -80 || true

# 4. One line per case, then what was written where it should not have been.
failed=0
"$PY" -m paperecg.tools.bad_inputs check --data "$WORK/bad/corpus" --outputs "$WORK/outputs" \
      --rejected "$WORK/bad/rejected" "$WORK/outputs_rejected" "$WORK/logs/rejected" || failed=1
if [ "$run_rc" != 0 ]; then
  echo "FAIL: run_model.py exited $run_rc on the corpus:"; tail -20 "$WORK/logs/corpus.out"; failed=1
fi
stray=$(find "$WORK/challenge" "$WORK/bad" "$WORK/home" "$WORK/tmp" -newer "$WORK/marker" -type f \
        -not -path "$WORK/challenge/model/*" -not -path '*/__pycache__/*' | head -20)
if [ -n "$stray" ]; then
  echo "FAIL: files written outside the model/output folders:"; echo "$stray"; failed=1
fi
[ "$failed" = 0 ] && echo "bad-input simulation passed" || { echo "bad-input simulation FAILED"; exit 1; }
