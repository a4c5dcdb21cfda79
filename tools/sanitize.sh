#!/usr/bin/env bash
# tools/sanitize.sh -- build fastloss's compiled extensions with
# AddressSanitizer + UndefinedBehaviorSanitizer in a fresh virtual
# environment and run the test suite (fuzz harness included) against that
# build.  The run must be clean: an ASan report or any UBSan finding
# (halt_on_error=1: misaligned loads, overflow, out-of-range shifts, ...)
# stops the process and fails the run.  docs/reliability.md describes it.
#
#   tools/sanitize.sh [pytest arguments]     (default: the whole suite)
#
# Environment:
#   PYTHON   interpreter for the venv (default python3)
#   CC       compiler whose sanitizer runtimes are preloaded (default gcc)
#   FASTLOSS_SANITIZE_DEPS_FROM=/path/to/venv
#            reuse that venv's packages (added with a .pth file) instead of
#            installing the test extras of pyproject.toml from the index
#   FASTLOSS_SANITIZE_KEEP=1   keep the work directory (printed)
#   FASTLOSS_SANITIZE_OPT=-O1  appended to the compile flags: about half the
#            build time of the default (the shipped -O3 code, vectorized)
#
# The source tree is copied (git ls-files: tracked and untracked, not ignored,
# files as they are in the work tree), so the in-place build is left alone.  libasan must
# be the first library loaded, hence LD_PRELOAD; libstdc++ is preloaded too,
# because ASan intercepts __cxa_throw, which torch's C++ exceptions need
# resolved at startup.  Python's own allocator is switched to malloc so that
# ASan sees every buffer.  Leak detection is off: CPython frees little at
# exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
CC=${CC:-gcc}
WORK=$(mktemp -d /tmp/fastloss-sanitize.XXXXXX)
if [ "${FASTLOSS_SANITIZE_KEEP:-0}" = 1 ]; then
    echo "== keeping $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
T0=$(date +%s)

LIBASAN=$($CC -print-file-name=libasan.so)
LIBSTDCXX=$($CC -print-file-name=libstdc++.so)
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize.sh: $CC has no libasan.so (Debian/Ubuntu: apt-get install libasan8 or gcc)" >&2
    exit 2
fi

echo "== fresh venv: $WORK/venv ($($PY --version))"
$PY -m venv "$WORK/venv"
# shellcheck disable=SC1091
. "$WORK/venv/bin/activate"
if [ -n "${FASTLOSS_SANITIZE_DEPS_FROM:-}" ]; then
    SP=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$FASTLOSS_SANITIZE_DEPS_FROM/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
        > "$SP/zz_fastloss_deps.pth"
    # the venv's bundled setuptools would shadow the newer one of those packages
    python -m pip uninstall -q -y setuptools >/dev/null 2>&1 || true
    echo "== dependencies from $FASTLOSS_SANITIZE_DEPS_FROM"
else
    python -m pip install -q --upgrade pip
    echo "== test extras of pyproject.toml"
    python -c "import tomllib" 2>/dev/null || python -m pip install -q tomli  # (Python 3.10)
    python - "$ROOT/pyproject.toml" > "$WORK/requirements.txt" <<'EOF'
import sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["test"]))
EOF
    python -m pip install -q -r "$WORK/requirements.txt"
fi
python -m pip install -q "Cython>=3.0" "numpy>=2.0" "setuptools>=77"

echo "== source tree: $WORK/src"
mkdir -p "$WORK/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && tar --null -T - -cf -) \
        | tar -xf - -C "$WORK/src"
else
    cp -r "$ROOT"/. "$WORK/src"
    rm -rf "$WORK/src/build" "$WORK/src"/src/fastloss/*.so
fi

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -g ${FASTLOSS_SANITIZE_OPT:-}"
echo "== build with $SAN"
cd "$WORK/src"
FASTLOSS_EXTRA_CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
    python setup.py build_ext --inplace > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
grep "fastloss build:" "$WORK/build.log"
for so in src/fastloss/_*.so; do
    ldd "$so" > "$WORK/ldd.txt"  # (not piped into grep -q: under pipefail its early exit fails the pipe)
    if ! grep -q libasan "$WORK/ldd.txt"; then
        echo "sanitize.sh: $so is not linked with libasan" >&2
        exit 1
    fi
done
T1=$(date +%s)
echo "== built in $((T1 - T0)) s"

echo "== test suite under ASan + UBSan"
export LD_PRELOAD="$LIBASAN $LIBSTDCXX"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
export PYTHONMALLOC=malloc
export PYTHONPATH="$WORK/src/src"
python -c "import fastloss; fastloss.show_config()"

# Canaries: the sanitizers must be live, or a clean run proves nothing.
# Bypassing the Python checks, the kernel is handed a misaligned array
# (UBSan must report the load) and a target shorter than the input (ASan
# must report the read past its end).
canary() {  # canary NAME EXPECTED-TEXT PYTHON-CODE
    if python -c "$3" > "$WORK/canary.log" 2>&1; then
        echo "sanitize.sh: canary '$1' ran clean: the sanitizer is not active" >&2
        exit 1
    fi
    if ! grep -q "$2" "$WORK/canary.log"; then
        echo "sanitize.sh: canary '$1' failed without the expected report ($2):" >&2
        tail -20 "$WORK/canary.log" >&2
        exit 1
    fi
    echo "== canary $1: reported ($2)"
}
PRE='import numpy as np; from fastloss import _pointwise as P; mse = P.LOSS_IDS["mse"]'
canary ubsan-misaligned "load of misaligned address" "$PRE
b = np.zeros(8 * 64 + 9, np.uint8); x = np.frombuffer(b, np.float64, count=64, offset=1)
P.run(mse, True, x, x, None, None, 0, None, None, None, None, 0.0, 0.0, 0.0, 0, 0, 0, 1.0, 1)"
canary asan-overflow "heap-buffer-overflow" "$PRE
x = np.ones(4096); y = np.ones(100)
P.run(mse, True, x, y, None, None, 0, None, None, None, None, 0.0, 0.0, 0.0, 0, 0, 0, 1.0, 1)"

set +e
python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
T2=$(date +%s)
echo "== suite: exit $rc in $((T2 - T1)) s (total $((T2 - T0)) s)"
exit $rc
