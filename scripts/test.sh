#!/usr/bin/env bash
# Install dependencies, build everything (including the libFuzzer build), run
# the whole test suite with ctest, then the fuzzers. Exits non-zero if any part
# fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "test: setup (CKPT_FUZZ=1)"
CKPT_FUZZ=1 ./scripts/setup.sh

failed=()

echo "test: running ctest"
if ! ctest --test-dir build --output-on-failure --no-tests=error \
      --timeout 300 -j2; then
  failed+=(ctest)
fi

echo "test: running fuzzers"
if [[ ! -f fuzz/run-all.sh ]]; then
  echo "test: fuzz/run-all.sh does not exist yet; cannot run the fuzzers" >&2
  failed+=(fuzz)
elif ! bash fuzz/run-all.sh build-fuzz; then
  failed+=(fuzz)
fi

if (( ${#failed[@]} > 0 )); then
  echo "test: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test: all passed"
