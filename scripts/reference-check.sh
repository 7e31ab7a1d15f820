#!/usr/bin/env bash
# Runs the reference skill's own checkers on a repository holding a codex-autoresearch run, for
# the hand check of the file formats (GUIDE §11): its resume checker, and for a run made by
# `codex-autoresearch exec` (its results log says `# execution: exec`) its exec checker.
#
# usage: scripts/reference-check.sh SKILL_CHECKOUT REPO [EXEC_STDOUT]
#   SKILL_CHECKOUT  a checkout of the reference skill repository (commit 239c686 for the current
#                   layout; its March commit c8a15ec for a run written with --layout march)
#   REPO            the repository the run is in
#   EXEC_STDOUT     optional: the JSON lines `exec` printed, checked as its completion stream
#                   (`--last-message-file`)
# Prints each command and its output; exits 1 when a checker failed.
set -u
if [ $# -lt 2 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
skill=$(cd "$1" && pwd) || exit 2
repo=$(cd "$2" && pwd) || exit 2
stdout_file=${3:-}
scripts="$skill/scripts"
[ -f "$scripts/autoresearch_resume_check.py" ] || { echo "no scripts/autoresearch_resume_check.py in $skill" >&2; exit 2; }
status=0
show() {
  echo "\$ $*"
  "$@"
  local rc=$?
  echo "(exit $rc)"
  echo
  [ $rc -eq 0 ] || status=1
}
(cd "$skill" && git log --oneline -1 2>/dev/null | sed 's/^/reference at /')
echo
show python3 "$scripts/autoresearch_resume_check.py" --repo "$repo"
results="$repo/autoresearch-results/results.tsv"
if [ -f "$results" ] && ! grep -q '^# execution: exec$' "$results"; then
  echo "(not an exec run: the exec checker is skipped)"
elif [ -f "$scripts/check_skill_invariants.py" ]; then
  if [ -n "$stdout_file" ]; then
    show python3 "$scripts/check_skill_invariants.py" exec --repo "$repo" --last-message-file "$stdout_file"
  else
    show python3 "$scripts/check_skill_invariants.py" exec --repo "$repo"
  fi
fi
exit $status
