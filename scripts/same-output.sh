#!/usr/bin/env bash
# Checks that two builds give byte-identical output: every fixture and every capture of the
# test corpus, in JSON (2 threads), CSV (1 thread) and the table with --ports-only (2
# threads), with --flows; compares standard output, standard error, the flows file and the
# exit status. For refactors that must not change behaviour.
#
#   scripts/same-output.sh OLD_BINARY NEW_BINARY
set -u
cd "$(dirname "$0")/.."
old=$1 new=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runs=0 differ=0
for f in fixtures/*.pcap fixtures/*.pcapng tests/corpus/*.pcap tests/corpus/*.pcapng tests/corpus/*.cap; do
  for args in "--format json --threads 2" "--format csv --threads 1" "--format table --threads 2 --ports-only"; do
    runs=$((runs + 1))
    # shellcheck disable=SC2086
    "$old" classify $args --flows "$tmp/old.flows" "$f" >"$tmp/old.out" 2>"$tmp/old.err"
    oc=$?
    # shellcheck disable=SC2086
    "$new" classify $args --flows "$tmp/new.flows" "$f" >"$tmp/new.out" 2>"$tmp/new.err"
    nc=$?
    if [ "$oc" != "$nc" ] || ! cmp -s "$tmp/old.out" "$tmp/new.out" || ! cmp -s "$tmp/old.err" "$tmp/new.err" \
      || ! cmp -s "$tmp/old.flows" "$tmp/new.flows"; then
      echo "differ: $f ($args): exit $oc and $nc"
      differ=$((differ + 1))
    fi
    rm -f "$tmp/old.flows" "$tmp/new.flows"
  done
done
echo "$runs runs, $differ differ"
[ "$differ" -eq 0 ]
