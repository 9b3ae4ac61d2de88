#!/usr/bin/env bash
# Fuzzes every parser that reads hostile input: each `fuzz_` property test (proptest) of the pipeline, schemas
# and queries crates, with CASES cases each (default 1,000,000), in a release build whose own crates keep
# overflow checks (an overflow panics in a debug build and would wrap silently in a plain release build).
# Prints the cases and time of each test, then the cost of the normalizer's panic guard. Exits non-zero on a
# crash: proptest prints the shrunk input and keeps its seed in the crate's proptest-regressions/; put the input
# in pipeline/tests/fuzz-regressions/ too.
#
#   scripts/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-1000000}
crates=(sentra-pipeline sentra-schemas sentra-queries)
release=(--release)
for c in "${crates[@]}"; do
    release+=(--config "profile.release.package.$c.overflow-checks=true")
done
packages=()
for c in "${crates[@]}"; do packages+=(-p "$c"); done

cargo test "${release[@]}" "${packages[@]}" --tests --no-run
export PROPTEST_CASES=$cases
failed=0
for c in "${crates[@]}"; do
    tests=$(cargo test -q "${release[@]}" -p "$c" --tests fuzz_ -- --list 2>/dev/null | sed -n 's/: test$//p' |
        grep -E '(^|::)fuzz_' || true)
    for t in $tests; do
        started=$(date +%s%N)
        if cargo test -q "${release[@]}" -p "$c" --tests -- --exact "$t" >"/tmp/fuzz-$$.log" 2>&1; then
            verdict=ok
        else
            verdict=CRASHED
            failed=1
            grep -E 'minimal failing input|Test failed|panicked' "/tmp/fuzz-$$.log" | head -20
        fi
        ms=$((($(date +%s%N) - started) / 1000000))
        printf '%-16s %-56s %10s cases %6d.%01d s  %s\n' "$c" "$t" "$cases" $((ms / 1000)) $((ms % 1000 / 100)) "$verdict"
    done
done
rm -f "/tmp/fuzz-$$.log"
cargo test -q "${release[@]}" -p sentra-pipeline --lib the_panic_guard_costs -- --ignored --nocapture |
    grep -E 'panic guard|FAILED|ratio' || failed=1
exit $failed
