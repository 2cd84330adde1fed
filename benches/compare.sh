#!/usr/bin/env bash
# Side-by-side timing of portscope against other readers of the same capture.
#
#   benches/compare.sh [CAPTURE] [RUNS] [mix|small]
#
# Without CAPTURE it makes the issues' two reference captures with
# ../shared/tools/gen-bench-pcap in /tmp (5 million packets each: the 2.7 GB mix, and the
# 64-byte variant, --small), if they are not there yet, and compares on both. Every tool
# runs RUNS times (default 5), interleaved so
# a noisy neighbour hurts them alike, from the page cache (one warm-up read first). Prints
# the median wall time and peak RSS of each, and each tool's median divided by portscope's.
# ndpiReader (Debian libndpi-bin) and tshark are used when installed; tshark reads a
# 200,000-packet slice, and its time is scaled up to the whole file. `walk` is the limit:
# the same 1 MiB block reads and record-header walk as portscope, with no decoding.
# With mix or small (as when it makes the reference captures), it also checks the
# throughput targets of the issues for that capture and prints each as met or missed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  for kind in mix small; do
    cap=/tmp/portscope-bench-$kind.pcap
    if [ ! -f "$cap" ]; then
      flag=""
      [ "$kind" = small ] && flag=--small
      python3 ../shared/tools/gen-bench-pcap "$cap" $flag
    fi
    "$0" "$cap" 5 "$kind"
    echo
  done
  exit 0
fi
cap=$1
runs=${2:-5}
kind=${3:-}
cargo build --release -q
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
bin=target/release/portscope
cat "$cap" > /dev/null

declare -A cmds
cmds[walk]="$bin bench --walk $cap"
cmds[portscope]="$bin classify --format json -o /dev/null $cap"
cmds[portscope_1worker]="$bin classify --threads 1 --format json -o /dev/null $cap"
cmds[tcpdump]="tcpdump -n -r $cap -w /dev/null"
order=(walk portscope portscope_1worker tcpdump)
# IPFIX export to a local collector (the cost check of the export issue): nfcapd with the
# receive buffer the README's deployment section starts it with, and portscope with its
# defaults (paced to 200,000 records a second, 1400-byte messages) and as the README sets it
# up for a collector on the same host (unpaced, loopback-sized messages).
collector=""
if command -v nfcapd >/dev/null; then
  collector=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  nfcapd -b 127.0.0.1 -p "$port" -w "$collector" -B 4194304 >"$collector/log" 2>&1 &
  nfcapd_pid=$!
  until grep -q "Startup nfcapd" "$collector/log"; do sleep 0.05; done
  cmds[ipfix_paced]="$bin classify --ipfix udp://127.0.0.1:$port --format json -o /dev/null $cap"
  cmds[ipfix_local]="$bin classify --ipfix udp://127.0.0.1:$port --ipfix-rate 0 --ipfix-mtu 65000 --format json -o /dev/null $cap"
  # The same export to a socket that only reads the datagrams: portscope's share of the
  # cost without the collector's own work.
  sink_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4194304)
s.bind(('127.0.0.1', $sink_port))
while True:
    s.recv(65536)
" &
  sink_pid=$!
  # nfcapd writes its file when told to stop: wait for it before removing the directory.
  trap 'kill $nfcapd_pid $sink_pid 2>/dev/null; wait $nfcapd_pid 2>/dev/null; rm -rf "$collector"' EXIT
  cmds[ipfix_local_sink]="$bin classify --ipfix udp://127.0.0.1:$sink_port --ipfix-rate 0 --ipfix-mtu 65000 --format json -o /dev/null $cap"
  # With one worker the pipeline leaves the collector room on two cores.
  cmds[portscope_1worker_ipfix_local]="$bin classify --threads 1 --ipfix udp://127.0.0.1:$port --ipfix-rate 0 --ipfix-mtu 65000 --format json -o /dev/null $cap"
  order+=(ipfix_paced ipfix_local ipfix_local_sink portscope_1worker_ipfix_local)
fi
if command -v ndpiReader >/dev/null; then
  cmds[ndpiReader]="ndpiReader -i $cap -q"
  order+=(ndpiReader)
fi
total=$(capinfos -c -M "$cap" 2>/dev/null | awk '/Number of packets/ {print $NF}' || true)
slice=""
if command -v tshark >/dev/null && command -v editcap >/dev/null && [ -n "$total" ]; then
  slice=$(mktemp --suffix=.pcap)
  editcap -r "$cap" "$slice" 1-200000 >/dev/null
  cmds[tshark_slice]="tshark -n -q -z io,phs -r $slice"
  order+=(tshark_slice)
fi

declare -A times rss
tf=$(mktemp)
for ((i = 0; i < runs; i++)); do
  for name in "${order[@]}"; do
    /usr/bin/time -f '%e %M' -o "$tf" ${cmds[$name]} >/dev/null 2>&1 || true
    out=$(tail -1 "$tf")
    times[$name]+="${out% *} "
    rss[$name]+="${out#* } "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(echo "${times[portscope]}" | median)
printf '%-20s %10s %10s %12s\n' tool "median s" "peak MiB" "x portscope"
for name in "${order[@]}"; do
  t=$(echo "${times[$name]}" | median)
  m=$(echo "${rss[$name]}" | median)
  if [ "$name" = tshark_slice ]; then
    t=$(awk -v t="$t" -v n="$total" 'BEGIN {printf "%.2f", t * n / 200000}')
    name="tshark (scaled)"
  fi
  printf '%-20s %10s %10.0f %12.2f\n' "$name" "$t" "$(awk -v m="$m" 'BEGIN {print m/1024}')" "$(awk -v t="$t" -v b="$base" 'BEGIN {print t/b}')"
done
echo "capture: $cap ($runs runs each, interleaved; $(nproc) cores)"
if [ -n "$collector" ]; then
  ticks=$(awk '{print $14 + $15}' "/proc/$nfcapd_pid/stat")
  echo "nfcapd (the local collector of the ipfix rows) used $(awk -v t="$ticks" -v r="$runs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", t / hz / (3 * r)}') s of CPU per export"
fi

# The issues' targets: each tool's median over portscope's (walk: portscope's over the walk's).
target() { # name, ratio, comparison, bound
  if awk -v r="$2" -v b="$4" -v c="$3" 'BEGIN {exit !((c == ">=") ? r >= b : r <= b)}'; then
    printf 'target %-34s %6.2f %s %-5s met\n' "$1" "$2" "$3" "$4"
  else
    printf 'target %-34s %6.2f %s %-5s MISSED\n' "$1" "$2" "$3" "$4"
  fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
med() { echo "${times[$1]}" | median; }
case "$kind" in
  mix)
    if [ -n "$collector" ]; then
      target "ipfix_local / portscope" "$(ratio "$(med ipfix_local)" "$base")" "<=" 1.05
      target "the same to a bare socket" "$(ratio "$(med ipfix_local_sink)" "$base")" "<=" 1.05
      target "the same, 1 worker" "$(ratio "$(med portscope_1worker_ipfix_local)" "$(med portscope_1worker)")" "<=" 1.05
    fi
    target "tcpdump / portscope" "$(ratio "$(med tcpdump)" "$base")" ">=" 2.5
    [ -n "${times[ndpiReader]:-}" ] && target "ndpiReader / portscope" "$(ratio "$(med ndpiReader)" "$base")" ">=" 25
    target "portscope / walk" "$(ratio "$base" "$(med walk)")" "<=" 1.3
    ;;
  small)
    target "tcpdump / portscope" "$(ratio "$(med tcpdump)" "$base")" ">=" 2
    [ -n "${times[ndpiReader]:-}" ] && target "ndpiReader / portscope" "$(ratio "$(med ndpiReader)" "$base")" ">=" 20
    ;;
esac
rm -f "$tf" ${slice:+"$slice"}
