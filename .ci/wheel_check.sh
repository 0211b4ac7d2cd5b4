#!/usr/bin/env bash
# CI: build the wheel, install it (not editable) into a fresh virtual environment and run
# `mas list`, `mas validate prisoners_dilemma` and `mas run prisoners_dilemma --episodes 2`
# there, from outside the repository, so only the installed package can be imported.
#
# To stay fast the fresh environment borrows the dependencies from .venv through a .pth
# line instead of downloading them again. Python reads .pth files only in the environment's
# own site-packages, so .venv's editable install of this repository stays invisible; the
# check asserts that `mas` is imported from the fresh environment.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${WHEELCHECK_PYTHON:-$repo/.venv/bin/python}"  # the CI environment with the dependencies
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# build from a clean copy: an in-tree build/ may hold stale files that would end up in the wheel
mkdir "$work/src"
cp -R "$repo/pyproject.toml" "$repo/README.md" "$repo/LICENSE" "$repo/mas" "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/mas_sim-*.whl)"
echo "wheel-check: built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

"$python" -m venv --without-pip "$work/venv"
"$python" -m pip --python "$work/venv/bin/python" install -q --no-deps "$wheel"
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
purelib "$python" > "$(purelib "$work/venv/bin/python")/wheelcheck-deps.pth"

cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys
from pathlib import Path

import mas
from mas import registry

venv = Path(sys.argv[1]).resolve()
package = Path(mas.__file__).resolve().parent
assert venv in package.parents, f"mas imported from {package}, not from the wheel installed in {venv}"
scenarios = registry.builtin_scenarios()
assert "prisoners_dilemma" in scenarios and all(package in p.resolve().parents for p in scenarios.values()), scenarios
assert registry.builtin_tournaments(), "no built-in tournaments in the wheel"
assert (package / "py.typed").is_file(), "py.typed missing"
assert (package / "agents/llm/adapters/tuned/adapter_model.safetensors").is_file(), "the tuned adapter is missing"
print(f"wheel-check: mas from {package}, {len(scenarios)} built-in scenarios")
PY
"$work/venv/bin/mas" --version
"$work/venv/bin/mas" list > "$work/list.txt"
grep -q "prisoners_dilemma" "$work/list.txt"
"$work/venv/bin/mas" validate prisoners_dilemma axelrod_classic
"$work/venv/bin/mas" run prisoners_dilemma --episodes 2 --no-progress --out "$work/run"
test -f "$work/run/run.sqlite"
echo "wheel-check: ok"
