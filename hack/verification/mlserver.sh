#!/usr/bin/env bash
# The model server for verification checks: MLServer with its scikit-learn runtime, in a
# virtualenv of its own under ~/.cache/adroit/ (its pins would fight the project's), built
# once per version. Prints the virtualenv's path.
set -euo pipefail
MLSERVER_VERSION="${MLSERVER_VERSION:-1.7.1}"
cache="${ADROIT_CACHE:-$HOME/.cache/adroit}"
venv="$cache/mlserver-$MLSERVER_VERSION"
if [[ ! -x "$venv/bin/mlserver" || ! -f "$venv/.installed" ]]; then
  echo "installing MLServer $MLSERVER_VERSION into $venv (once)" >&2
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet "mlserver==$MLSERVER_VERSION" \
    "mlserver-sklearn==$MLSERVER_VERSION" >&2
  touch "$venv/.installed"
fi
echo "$venv"
