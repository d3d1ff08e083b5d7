# Sourced by scripts/*: make sure .venv exists and matches pyproject.toml.
set -euo pipefail
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PY --version)…" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.hoso-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing HoSo Courier and its dependencies into .venv…" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
