#!/usr/bin/env bash
# Soak test (not in CI): builds rtmpgate and rtmpload, starts the gateway on free
# loopback ports, runs SOAK_PUBLISHERS looped publishers and SOAK_VIEWERS viewers
# for SOAK_DURATION, samples the gateway once a second (goroutines, VmRSS, store
# bytes) into a CSV and prints min/median/max and start vs end.
#
#   SOAK_DURATION=10m bash cmd/rtmpload/soak.sh      (make soak)
#
# Settings (environment): SOAK_DURATION (10m), SOAK_PUBLISHERS (200),
# SOAK_VIEWERS (200), SOAK_LINGER (5s), SOAK_GATEWAY_ARGS (extra rtmpgate flags,
# e.g. "-max-store-bytes 4294967296"), SOAK_DIR (a new temp dir: binaries, clip,
# logs, samples.csv, summary.json). Exits with rtmpload's status, or 1 if the
# gateway did not settle (store bytes back to 0) after the run.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${SOAK_DURATION:-10m}
publishers=${SOAK_PUBLISHERS:-200}
viewers=${SOAK_VIEWERS:-200}
linger=${SOAK_LINGER:-5s}
gateway_args=${SOAK_GATEWAY_ARGS:-}
dir=${SOAK_DIR:-$(mktemp -d /tmp/rtmpgate-soak.XXXXXX)}
mkdir -p "$dir"
csv=$dir/samples.csv

echo "soak: $publishers publishers, $viewers viewers, $duration, output in $dir" >&2
go build -trimpath -o "$dir/rtmpgate" ./cmd/rtmpgate
go build -trimpath -o "$dir/rtmpload" ./cmd/rtmpload
[ -f "$dir/clips/av.flv" ] || bash testdata/make-clips.sh "$dir/clips" 8

gw_pid=
load_pid=
cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
	[ -n "$gw_pid" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
}
trap cleanup EXIT

"$dir/rtmpgate" -rtmp 127.0.0.1:0 -http 127.0.0.1:0 -linger "$linger" \
	-max-conns-per-ip $((publishers + 16)) -log-level info $gateway_args 2>"$dir/gateway.log" &
gw_pid=$!
for _ in $(seq 100); do
	grep -q '"message":"listening"' "$dir/gateway.log" 2>/dev/null && break
	kill -0 "$gw_pid" 2>/dev/null || { cat "$dir/gateway.log" >&2; exit 1; }
	sleep 0.1
done
listen=$(grep -m1 '"message":"listening"' "$dir/gateway.log")
rtmp=$(sed -E 's/.*"rtmp":"([^"]+)".*/\1/' <<<"$listen")
http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$listen")
echo "soak: gateway pid $gw_pid, rtmp $rtmp, http $http" >&2

# sample appends one CSV row: unix time, seconds since start, goroutines, VmRSS kB,
# store bytes. A failed scrape leaves its two columns empty. Samples run in the
# background so a slow scrape does not thin the series; rows are sorted at the end.
start=$(date +%s.%N)
echo "unix,elapsed_s,goroutines,rss_kb,store_bytes" >"$csv"
sample() {
	local m rss now
	m=$(curl -s --max-time 2 "http://$http/metrics" || true)
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status" 2>/dev/null || echo "")
	now=$(date +%s.%N)
	awk -v now="$now" -v start="$start" -v rss="$rss" '
		$1 == "go_goroutines" { g = $2 + 0 }
		$1 == "rtmpgate_store_bytes" { s = $2 + 0 }
		END { printf "%.0f,%.1f,%s,%s,%s\n", now, now - start, g, rss, s }' <<<"$m" >>"$csv"
}

"$dir/rtmpload" -url "rtmp://$rtmp/live" -http "http://$http" -n "$publishers" -viewers "$viewers" \
	-prefix soak -clip "$dir/clips/av.flv" -duration "$duration" -loop -ramp 5s -json \
	>"$dir/summary.json" 2>"$dir/load.log" &
load_pid=$!
while kill -0 "$load_pid" 2>/dev/null; do
	sample &
	sleep 1
done
load_status=0
wait "$load_pid" || load_status=$?
load_pid=
sleep 2.5 # the last background samples (curl gives up after 2 s)

# Keep sampling through the linger and a janitor sweep, until the store is empty.
settle_until=$(($(date +%s) + ${linger%s} + 10))
settled=1
while :; do
	sample
	last=$(tail -n1 "$csv")
	[ "$(cut -d, -f5 <<<"$last")" = 0 ] && { settled=0; break; } # an empty column is a failed scrape
	[ "$(date +%s)" -ge "$settle_until" ] && break
	sleep 1
done

{ head -n1 "$csv"; tail -n +2 "$csv" | sort -t, -k2,2n; } >"$csv.sorted" && mv "$csv.sorted" "$csv"
echo
echo "rtmpload summary ($dir/summary.json):"
jq -c '{ok, wall_s, publishers: {requested: .publishers.requested, connected: .publishers.connected, failed: .publishers.failed, disconnected_early: .publishers.disconnected_early, stream_kbps: (.publishers.stream_kbps|floor), total_mbps: (.publishers.total_mbps*10|floor/10)}, viewers: (.viewers // {} | {segments, playlist_errors, segment_404, segment_errors, max_playlist_age_ms, max_first_segment_ms}), cpu}' "$dir/summary.json" 2>/dev/null || cat "$dir/summary.json"
jq -r '.errors[]? | "error: " + .' "$dir/summary.json" 2>/dev/null | head -5 || true
echo
echo "gateway samples ($csv, $(($(wc -l <"$csv") - 1)) rows):"
printf '%-12s %14s %14s %14s %14s %14s\n' column min median max start end
for col in 3:goroutines 4:rss_kb 5:store_bytes; do
	n=${col%%:*}
	name=${col#*:}
	tail -n +2 "$csv" | cut -d, -f"$n" | grep -v '^$' | sort -n >"$dir/.col"
	rows=$(wc -l <"$dir/.col")
	[ "$rows" -gt 0 ] || continue
	min=$(head -n1 "$dir/.col")
	max=$(tail -n1 "$dir/.col")
	med=$(sed -n "$(((rows + 1) / 2))p" "$dir/.col")
	first=$(sed -n 2p "$csv" | cut -d, -f"$n")
	end=$(tail -n1 "$csv" | cut -d, -f"$n")
	printf '%-12s %14s %14s %14s %14s %14s\n' "$name" "$min" "$med" "$max" "$first" "$end"
done
rm -f "$dir/.col"
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$gw_pid/status" 2>/dev/null || echo "?")
read -r utime stime < <(awk '{ sub(/.*\) /, ""); print $12/100, $13/100 }' "/proc/$gw_pid/stat" 2>/dev/null || echo "? ?")
echo "gateway: peak RSS (VmHWM) ${hwm} kB, CPU user ${utime} s sys ${stime} s"

if [ "$settled" -ne 0 ]; then
	echo "soak: store bytes not back to 0 within ${linger} + 10 s after the run" >&2
	exit 1
fi
exit "$load_status"
