# Sourced by scripts/demo.sh and scripts/test.sh: make ./.venv with Dispatch installed.
# EXTRAS (set by the caller before sourcing): empty for the demo, "dev" for the tests, so that
# trying Dispatch does not install the test tools (pytest, Playwright, mypy, ...).
# Reinstalls when pyproject.toml or setup.py changed since the last install, or when the extras
# asked for are not installed yet; the stamp file records which extras are.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISPATCH_VENV:-$ROOT/.venv}"
EXTRAS="${EXTRAS:-}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.dispatch-installed"
installed="$(cat "$STAMP" 2>/dev/null || true)"
stale=0
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$ROOT/setup.py" -nt "$STAMP" ]; then
    stale=1
fi
if [ -n "$EXTRAS" ] && [ "$installed" != "$EXTRAS" ]; then
    stale=1
fi
if [ "$stale" = 1 ]; then
    keep="${EXTRAS:-$installed}"  # a reinstall for the demo keeps the test tools a venv has
    target="$ROOT"
    [ -n "$keep" ] && target="$ROOT[$keep]"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
    printf '%s' "$keep" > "$STAMP"
fi
