# Shared by scripts/*: make sure .venv exists and holds ordo with the requested extras.
# Usage:  . scripts/_venv.sh; ensure_venv [extra]   (sets $PY to the venv's python, $ROOT)
# A function, not positional arguments to `.`: a sourced file sees the caller's "$@" when given
# none, and scripts/up's arguments (`--duration 20`) must never be taken for an extra.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Playwright (a test extra) drives the system's chromium; it must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

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

ensure_venv() {
  local extra="${1:-}"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV" >&2
    "$(pick_python)" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
  local stamp="$VENV/.ordo-installed${extra:+-$extra}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "==> installing ordo${extra:+[$extra]} into .venv (first run only)" >&2
    "$PY" -m pip install --quiet --upgrade pip >&2 || true
    "$PY" -m pip install --quiet -e "$ROOT${extra:+[$extra]}" >&2
    touch "$stamp"
  fi
  export PY ROOT
}

# The browser tests (tests/browser) need Debian's chromium. Installed where we can: as root, with
# apt-get, when it is missing; any failure is printed and tolerated (those tests then skip).
# ORDO_NO_CHROMIUM_INSTALL=1 leaves the system alone.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ -n "${ORDO_NO_CHROMIUM_INSTALL:-}" ]; then
    echo "==> no chromium: the browser tests will skip (ORDO_NO_CHROMIUM_INSTALL is set)" >&2
    return 0
  fi
  if [ "$(id -u)" != "0" ]; then
    echo "==> no chromium: the browser tests will skip (not root, so not installing it; apt-get install chromium)" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "==> no chromium: the browser tests will skip (no apt-get to install it with)" >&2
    return 0
  fi
  echo "==> installing chromium with apt-get (for tests/browser)" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
         { apt-get update -qq >/dev/null 2>&1 &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; }; then
    echo "==> could not install chromium with apt-get: the browser tests will skip" >&2
  fi
  return 0
}
