# Shared by scripts/*: make sure .venv exists and holds ordo with the requested extras.
# Usage: . scripts/_venv.sh [extra]   (sets $PY to the venv's python)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRA="${1:-}"
pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "ordo needs Python >= 3.11 (none found on PATH)" >&2
  return 1
}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV" >&2
  "$(pick_python)" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.ordo-installed${EXTRA:+-$EXTRA}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing ordo${EXTRA:+[$EXTRA]} into .venv (first run only)" >&2
  "$PY" -m pip install --quiet --upgrade pip >&2 || true
  "$PY" -m pip install --quiet -e "$ROOT${EXTRA:+[$EXTRA]}" >&2
  touch "$stamp"
fi
export PY ROOT
