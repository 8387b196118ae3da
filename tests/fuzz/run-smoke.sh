#!/usr/bin/env bash
# Fuzz smoke run: every fuzz target (tee-formats evidence and event-log
# parsers, Azure HCL report and TPM structures, callproc call-service input
# parsers, the HTTP/1.1 request and response reader, the audit record
# parser) for N seconds each.
#
#   tests/fuzz/run-smoke.sh [SECONDS]      (default 10)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`; scripts/install-deps does) and
# a toolchain that takes its flags: nightly where it is installed, else the
# repository's pinned toolchain with RUSTC_BOOTSTRAP=1 (the only one a fresh
# machine has; with `-s none` cargo-fuzz needs no nightly-only feature beyond
# what that allows). A missing prerequisite FAILS the run, unless
# ENCLAVE_ALLOW_SKIP_FUZZ=1 asks for the skip by name (CI never sets it).
# Corpora start from the real evidence in shared/fixtures ($ENCLAVE_FIXTURES,
# else the repository root's sibling shared/fixtures) plus seeds/<target>.
# Exits non-zero if any target crashes (the input lands in artifacts/<target>).
# Builds go to $CARGO_TARGET_DIR/fuzz (default <repo>/target-formats/fuzz).
# $FUZZ_TOOLCHAIN names the toolchain (default: as above); $FUZZ_TARGETS
# (space-separated) runs a subset.
set -euo pipefail

secs=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures=${ENCLAVE_FIXTURES:-$root/../shared/fixtures}
target_dir=${CARGO_TARGET_DIR:-$root/target-formats}/fuzz
targets=(${FUZZ_TARGETS:-snp_report cert_table tdreport tdx_quote eventlog hcl_report tpm_quote multipart call_input collateral_docs http_request audit_record})

say() { printf 'run-smoke: %s\n' "$*"; }
# A missing prerequisite: a failure, or a skip asked for by name.
missing() {
  if [ "${ENCLAVE_ALLOW_SKIP_FUZZ:-}" = 1 ]; then
    say "SKIPPED (ENCLAVE_ALLOW_SKIP_FUZZ=1): $*"
    exit 0
  fi
  say "FAIL: $* (set ENCLAVE_ALLOW_SKIP_FUZZ=1 to skip the fuzz smoke run on purpose)"
  exit 1
}

if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  tc=+$FUZZ_TOOLCHAIN
elif cargo +nightly --version >/dev/null 2>&1; then
  tc=+nightly
else
  tc=+$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")
fi
case $tc in +nightly*) ;; *) export RUSTC_BOOTSTRAP=1 ;; esac
if ! cargo "$tc" --version >/dev/null 2>&1; then
  missing "no ${tc#+} toolchain"
fi
if ! cargo "$tc" fuzz --version >/dev/null 2>&1; then
  missing "cargo-fuzz not installed (scripts/install-deps installs it: cargo install cargo-fuzz)"
fi

seed() {
  local t=$1 dir=$here/corpus/$1
  mkdir -p "$dir"
  case $t in
    snp_report) for f in "$fixtures"/snp/*/report.bin; do
                  [ -f "$f" ] && cp -f "$f" "$dir/$(basename "$(dirname "$f")").bin"
                done ;;
    tdreport)   cp -f "$fixtures"/tdx/intel-dcap/*.dat "$dir"/ 2>/dev/null || true ;;
    tdx_quote)  cp -f "$fixtures"/tdx/dcap-qvl/tdx_quote "$fixtures"/tdx/dcap-qvl/tdx_quote_outdated \
                      "$fixtures"/tdx/trustee/*.dat "$dir"/ 2>/dev/null || true ;;
    eventlog)   for f in "$fixtures"/cloud/tdx-eventlog/*/*; do
                  [ -f "$f" ] && cp -f "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"
                done ;;
    hcl_report) for f in "$fixtures"/cloud/azure/*/hcl-report.bin; do
                  [ -f "$f" ] && cp -f "$f" "$dir/$(basename "$(dirname "$f")").bin"
                done ;;
    tpm_quote)  for f in "$fixtures"/cloud/azure/*/quote.bin "$fixtures"/cloud/azure/*/tpm-quote.msg; do
                  [ -f "$f" ] && cp -f "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"
                done ;;
    cert_table|multipart|call_input|audit_record) ;;
  esac
  if [ -d "$here/seeds/$t" ]; then cp -f "$here/seeds/$t"/* "$dir"/; fi
}

cd "$here"
mkdir -p logs
say "building ${targets[*]} (${tc#+}${RUSTC_BOOTSTRAP:+ with RUSTC_BOOTSTRAP=1}, debug assertions on) into $target_dir"
# Only our own --target-dir: an inherited CARGO_TARGET_DIR would send the
# binaries somewhere cargo-fuzz does not look.
env -u CARGO_TARGET_DIR cargo "$tc" fuzz build -a -s none --target-dir "$target_dir" >logs/build.log 2>&1 \
  || { cat logs/build.log; say "FAIL: build"; exit 1; }

failed=0
printf '%-12s %10s %10s %8s  %s\n' target runs exec/s secs result
for t in "${targets[@]}"; do
  seed "$t"
  log=logs/$t.log
  set +e
  env -u CARGO_TARGET_DIR cargo "$tc" fuzz run -a -s none --target-dir "$target_dir" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len=8192 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then result=ok; else result="CRASH (rc $rc, see tests/fuzz/$log, artifacts/$t)"; failed=1; fi
  printf '%-12s %10s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$secs" "$result"
done
if [ "$failed" -ne 0 ]; then say "FAIL: a target crashed"; exit 1; fi
say "ok: ${#targets[@]} targets, ${secs}s each, no crash"
