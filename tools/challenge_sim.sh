#!/usr/bin/env bash
# Organizer simulation without Docker: a fresh venv from requirements.txt, a read-only copy of the data,
# no network (unshare), train_model.py (short budget) -> run_model.py on the hidden view -> evaluate_model.py.
# Fails loudly if anything is written outside the model and output folders.
#
#   bash tools/challenge_sim.sh [DATA_FOLDER]      (default: a generated demo set)
# Environment: SIM_PROFILE (default tiny), SIM_KEEP=1 keeps the work folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/challenge-sim.XXXXXX)
[ "${SIM_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
echo "work folder: $WORK"

# 1. The image: a copy of the tracked tree and a fresh venv from the pinned requirements.
mkdir -p "$WORK/challenge"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$WORK/challenge")
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --no-cache-dir -r "$WORK/challenge/requirements.txt"
PY="$WORK/venv/bin/python"

# 2. Data: given, or generated from synthetic signals; then the hidden view for inference.
if [ $# -ge 1 ]; then
  cp -r "$1" "$WORK/data"
else
  (cd "$WORK/challenge" && "$PY" -m paperecg.tools.make_demo_data --out "$WORK/data" --records 24)
fi
(cd "$WORK/challenge" && "$PY" -m paperecg.tools.hidden_view -i "$WORK/data" -o "$WORK/hidden")

# 3. Train and run with no network and the data folders mounted read-only; everything else is watched.
touch "$WORK/marker"; sleep 1
cd "$WORK/challenge"
unshare -rnm bash -c "
  set -euo pipefail
  for d in '$WORK/data' '$WORK/hidden'; do mount --bind \"\$d\" \"\$d\"; mount -o remount,bind,ro \"\$d\"; done
  export PAPERECG_PROFILE='${SIM_PROFILE:-tiny}' HOME='$WORK/home'
  '$PY' train_model.py -d '$WORK/data' -m model_sim -v
  '$PY' run_model.py -d '$WORK/hidden' -m model_sim -o '$WORK/outputs' -v
"
"$PY" evaluate_model.py -d "$WORK/data" -o "$WORK/outputs" | tee "$WORK/scores.txt"

# 4. Nothing may have been written outside model_sim/ and outputs/ (caches of Python excepted).
stray=$(find "$WORK/challenge" "$WORK/data" "$WORK/hidden" -newer "$WORK/marker" -type f \
        -not -path '*/model_sim/*' -not -path '*/__pycache__/*' | head -20)
if [ -n "$stray" ]; then
  echo "FAIL: files written outside the model/output folders:"; echo "$stray"; exit 1
fi
grep -q '^SNR:' "$WORK/scores.txt" && grep -q '^F-measure:' "$WORK/scores.txt"
echo "challenge simulation passed"
