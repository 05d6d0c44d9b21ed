#!/usr/bin/env bash
# Quality-engine benchmark: truthset vs crowd-kit 1.4.2 on real crowds, 1M synthetic judgments,
# and the incremental single-task posterior. Usage: benchmarks/quality/run.sh [DATA_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA="${1:-$ROOT/../shared/data/crowd}"
VENV="$ROOT/benchmarks/.venv-quality"
if ! "$VENV/bin/python" -c "import crowdkit, truthset" 2>/dev/null; then
  echo "creating $VENV (crowd-kit 1.4.2 + truthset) ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q "crowd-kit==1.4.2" "pandas<3" "scikit-learn<1.6"
  "$VENV/bin/pip" install -q -e "$ROOT"
fi
exec "$VENV/bin/python" "$ROOT/benchmarks/quality/bench.py" "$DATA"
