#!/usr/bin/env bash
# Set up a working edgeprune on a fresh Linux machine: system packages the tests and the demo
# use, then a virtual environment installed from the pinned constraints (no unpinned torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

# System packages: Fashion-MNIST (real data for the demo and pruning) and OpenSSH (the ssh
# runner's tests start a real sshd on loopback). Installed only when missing.
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; tests that need them will fail" >&2
fi

stamp="$VENV/.edgeprune-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip==24.3.1"
# One resolver run, everything pinned by constraints.txt (torch included: see the torch trap in the README).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all]"
echo "$want" > "$stamp"
