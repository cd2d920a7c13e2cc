#!/usr/bin/env bash
# Mutation testing of the pure-logic modules with mutmut 3 (docs/mutation-testing.md): each
# module is mutated in a scratch copy of the checkout and only its own test file is run, so one
# module takes minutes. Not part of CI (too slow for every push); run it after changing a
# module's logic or its tests.
#
#   scripts/mutation.sh runtime/people model/regions   # modules, relative to har_daemon/
#   scripts/mutation.sh core                           # every module of a package that has tests
#   scripts/mutation.sh -t tests/x/test_y.py runtime/people   # other test files instead
#
# A module `pkg/name` is tested by tests/pkg/test_name.py unless -t names the tests. Prints the
# score per module and writes every surviving mutant's diff to out/mutation/<pkg.name>.txt.
# Environment: MUTATION_TIMEOUT (s per module, default 1200), KEEP=1 keeps the scratch copies.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-$REPO/.venv/bin/python}
MUTMUT=$(dirname "$PY")/mutmut
[ -x "$MUTMUT" ] || { echo "mutation.sh: mutmut not installed: pip install -e '.[dev]'" >&2; exit 2; }

tests=()
while getopts "t:h" opt; do
  case $opt in
    t) tests+=("$OPTARG") ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "mutation.sh: name at least one module, e.g. runtime/people" >&2; exit 2; }

modules=()
for arg in "$@"; do
  arg=${arg#har_daemon/}
  arg=${arg%.py}
  if [ -d "har_daemon/$arg" ]; then
    for f in "har_daemon/$arg"/*.py; do
      name=$(basename "$f" .py)
      [ "$name" = "__init__" ] && continue
      [ -f "tests/$arg/test_$name.py" ] && modules+=("$arg/$name")
    done
  elif [ -f "har_daemon/$arg.py" ]; then
    modules+=("$arg")
  else
    echo "mutation.sh: no module har_daemon/$arg.py nor package har_daemon/$arg" >&2
    exit 2
  fi
done

mkdir -p out/mutation
summary=()
for module in "${modules[@]}"; do
  pkg=$(dirname "$module")
  name=$(basename "$module")
  selected=("${tests[@]}")
  [ ${#selected[@]} -gt 0 ] || selected=("tests/$pkg/test_$name.py")
  for t in "${selected[@]}"; do
    [ -f "$t" ] || { echo "mutation.sh: no test file $t for $module (use -t)" >&2; exit 2; }
  done
  work=$(mktemp -d "${TMPDIR:-/tmp}/har-mutation.XXXXXX")
  # The checkout as it is now (uncommitted changes included), without ignored files.
  git ls-files -z --cached --others --exclude-standard \
    | xargs -0 cp -P --parents -t "$work" 2>/dev/null || true
  ln -sfn "$(readlink -f .venv)" "$work/.venv"
  {
    printf '\n[tool.mutmut]\nsource_paths = ["har_daemon"]\n'
    printf 'only_mutate = ["har_daemon/%s.py"]\n' "$module"
    printf 'pytest_add_cli_args_test_selection = [%s]\n' \
      "$(printf '"%s",' "${selected[@]}" | sed 's/,$//')"
    printf 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    # mutmut copies the package's .py files only: the bundled models (a link to models/) too
    printf 'also_copy = ["har_daemon/bundled_models"]\n'
  } >>"$work/pyproject.toml"
  echo "== $module (tests: ${selected[*]})"
  start=$(date +%s)
  rc=0
  (cd "$work" && PYTHONPATH=$work nice -n 10 timeout "${MUTATION_TIMEOUT:-1200}" \
    "$MUTMUT" run >"$work/mutmut.log" 2>&1) || rc=$?
  took=$(($(date +%s) - start))
  report="out/mutation/${module//\//.}.txt"
  (
    cd "$work"
    PYTHONPATH=$work "$MUTMUT" export-cicd-stats >/dev/null 2>&1 || true
    echo "# mutmut on har_daemon/$module.py, tests: ${selected[*]}, ${took}s, exit $rc"
    cat mutants/mutmut-cicd-stats.json 2>/dev/null || tail -20 mutmut.log
    echo
    PYTHONPATH=$work "$MUTMUT" results 2>/dev/null | sed 's/^ *//' >results.txt || true
    while IFS= read -r row; do
      echo "## $row"
      PYTHONPATH=$work "$MUTMUT" show "${row%%: *}" 2>/dev/null | grep '^[-+][^-+]' || true
    done <results.txt
  ) >"$report"
  line=$("$PY" - "$work/mutants/mutmut-cicd-stats.json" "$module" "$took" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except OSError:
    print(f"{sys.argv[2]}: no result (see the log)"); raise SystemExit
total = s["total"] - s["skipped"]
caught = s["killed"] + s["timeout"]  # a mutant that hangs the tests is caught too
score = 100.0 * caught / total if total else 0.0
print(f"{sys.argv[2]}: {caught}/{total} caught ({score:.1f} %), {s['survived']} survived, "
      f"{s['timeout']} by timeout, {s['no_tests']} without tests, {sys.argv[3]} s")
EOF
)
  echo "$line (survivors: $report)"
  summary+=("$line")
  [ "${KEEP:-0}" = 1 ] && echo "   scratch copy kept: $work" || rm -rf "$work"
  [ $rc -eq 0 ] || echo "   mutmut exited $rc (timeout or error): see $report" >&2
done
printf '\n%s\n' "${summary[@]}"
