#!/usr/bin/env bash
# Builds Tandem and runs every test: first the core libraries' unit tests under AddressSanitizer
# and UndefinedBehaviorSanitizer, then the full build's suite (unit, integration, slow). The last
# thing printed is ctest's summary of the full suite.
#   scripts/test.sh            # both
#   TANDEM_SKIP_SANITIZERS=1 scripts/test.sh   # only the full build
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${TANDEM_JOBS:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export CTEST_OUTPUT_ON_FAILURE=1

if [ "${TANDEM_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== sanitizer build (ASan + UBSan) of the core libraries' unit tests"
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTANDEM_SANITIZE=ON -DTANDEM_CORE_ONLY=ON -DTANDEM_BUILD_BENCH=OFF > /dev/null
  cmake --build build-sanitize -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize -L unit -j "$jobs" --timeout 600
fi

echo "== full build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${TANDEM_CMAKE_ARGS:-}
cmake --build build -j "$jobs"
ctest --test-dir build -j "$jobs" --timeout 900
