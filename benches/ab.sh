#!/usr/bin/env bash
# Two builds on one capture, interleaved: the median wall time of each and their ratio.
# For "no slowdown" claims against the previous commit on this noisy 2-core machine.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY CAPTURE [RUNS]
set -eu
old=$1 new=$2 cap=$3 runs=${4:-9}
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cat "$cap" >/dev/null
one() { { /usr/bin/time -f "%e" "$1" classify --format json "$cap" >/dev/null; } 2>&1 | tail -1; }
o=() n=()
for _ in $(seq "$runs"); do
  o+=("$(one "$old")")
  n+=("$(one "$new")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
mo=$(median "${o[@]}") mn=$(median "${n[@]}")
echo "$(basename "$cap"): old ${o[*]}: median $mo s; new ${n[*]}: median $mn s; new / old $(awk "BEGIN {printf \"%.3f\", $mn / $mo}")"
