#!/usr/bin/env bash
# Ladder benchmark (not in CI; issue 17's targets): what a three-rendition
# Enhanced RTMP multitrack publish costs rtmpgate. Makes the ladder with
# testdata/make-ladder.sh (1080p/720p/360p H.264 + AAC from Debian's ffmpeg,
# wrapped into one multitrack FLV by cmd/flvladder; cached under tmp/), builds
# rtmpgate and rtmpload and, like .ci/bench-e2e.sh, samples each gateway's CPU
# seconds (utime+stime from /proc/PID/stat) and RSS every second from the first
# publish, reads the RTMP bytes each received (rtmpgate_rtmp_bytes_received_total)
# at the steady window's start and end, then checks every playlist and MPD is
# valid and advancing.
#
#   MODE=compare (default): two rtmpgate processes in the same run, the same
#     ramp and window: gateway L gets N ladders (rtmpload -clip ladder.flv),
#     gateway S the same renditions as 3N single streams (three rtmpload, one
#     per rendition clip, each with the audio). Reported: CPU seconds per MB
#     received by each, and the ratio L / S.
#   MODE=scale: gateway L alone with N ladders (100 by default): CPU, RSS
#     against the store's bytes (rtmpgate_store_bytes, /api/streams).
#
#   make bench-ladder                                  (compare, N=10)
#   MODE=scale N=100 make bench-ladder                 (100 ladders at 6 Mbit/s)
#   MODE=scale N=100 RATES="1200 500 150" make bench-ladder   (a lighter ladder)
#
# Settings (environment):
#   MODE          compare | scale (compare)
#   N             ladders (10 for compare, 100 for scale); compare adds 3N singles
#   RATES         video kbit/s of the 1080p, 720p and 360p renditions
#                 ("3800 1700 500": ~6.2 Mbit/s with the 128 kbit/s AAC)
#   CLIP_SECONDS  length of the made, looped clip (10)
#   CLIPS         a directory of ladder.flv, r0.flv, r1.flv, r2.flv to publish
#                 instead of making them (RATES is then only the report's label)
#   RAMP          spread of the publishers' starts (10s; 30s from N=50)
#   SETTLE        time from the first publish to the steady window (RAMP + 30s)
#   DURATION      the steady window (60s)
#   BATCH         rtmpload's sending step (1ms; 20ms from N=50)
#   PROFILE       seconds of CPU profile of gateway L from the window's start (0)
#   GATEWAY_ARGS  extra rtmpgate flags (both gateways)
#   BENCH_DIR     output directory (a new /tmp/rtmpgate-ladder.XXXXXX)
# Exits non-zero when a publisher failed or disconnected, or a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${MODE:-compare}
case "$mode" in compare | scale) ;; *) echo "MODE=$mode: want compare or scale" >&2; exit 2 ;; esac
n=${N:-$([ "$mode" = scale ] && echo 100 || echo 10)}
read -r -a rates <<<"${RATES:-3800 1700 500}"
[ "${#rates[@]}" = 3 ] || { echo "RATES: want three kbit/s figures" >&2; exit 2; }
clip_s=${CLIP_SECONDS:-10}
ramp=${RAMP:-$([ "$n" -ge 50 ] && echo 30s || echo 10s)}
ramp_s=${ramp%s}
settle_s=${SETTLE:-$((ramp_s + 30))}
settle_s=${settle_s%s}
window=${DURATION:-60s}
window_s=${window%s}
batch=${BATCH:-$([ "$n" -ge 50 ] && echo 20ms || echo 1ms)}
profile=${PROFILE:-0}
dir=${BENCH_DIR:-$(mktemp -d /tmp/rtmpgate-ladder.XXXXXX)}
mkdir -p "$dir"
log() { echo "bench-ladder: $*" >&2; }
for t in ffmpeg jq curl; do command -v "$t" >/dev/null || { log "$t missing (make test-deps installs it)"; exit 1; }; done

# --- build, clips --------------------------------------------------------------------
log "output in $dir"
go build -trimpath -o "$dir/rtmpgate" ./cmd/rtmpgate
go build -trimpath -o "$dir/rtmpload" ./cmd/rtmpload
if [ -n "${CLIPS:-}" ]; then
	clips=$CLIPS
else
	clips=tmp/ladder-$clip_s-${rates[0]}-${rates[1]}-${rates[2]}
	bash testdata/make-ladder.sh "$clips" "$clip_s" "${rates[@]}"
fi

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
mem_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status" 2>/dev/null || echo 0; }
metric() { # http name: the metric's value summed over its series
	curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }'
}

# --- gateways ------------------------------------------------------------------------
# L serves the ladders; S (compare) the singles. Each rendition is a stream of its
# own in the hub, so the stream bound counts 3 per ladder; the store is sized for
# ~6 Mbit/s a ladder (TS and CMAF, the window and RFC 8216's retention).
declare -A gw_pid gw_rtmp gw_http gw_debug
start_gw() { # name
	local name=$1 listen
	"$dir/rtmpgate" -rtmp 127.0.0.1:0 -http 127.0.0.1:0 -debug-addr 127.0.0.1:0 -log-level info \
		-max-conns-per-ip $((3 * n + 16)) -max-conns $((6 * n + 64)) -max-streams $((3 * n + 16)) \
		-max-store-bytes $(((n + 4) * 96 << 20)) -linger 5s ${GATEWAY_ARGS:-} 2>"$dir/rtmpgate-$name.log" &
	gw_pid[$name]=$!
	pids+=("$!")
	for _ in $(seq 100); do
		grep -q '"message":"listening"' "$dir/rtmpgate-$name.log" 2>/dev/null && break
		kill -0 "${gw_pid[$name]}" 2>/dev/null || { cat "$dir/rtmpgate-$name.log" >&2; exit 1; }
		sleep 0.1
	done
	listen=$(grep -m1 '"message":"listening"' "$dir/rtmpgate-$name.log") || { log "gateway $name did not log its addresses"; exit 1; }
	gw_rtmp[$name]=$(sed -E 's/.*"rtmp":"([^"]+)".*/\1/' <<<"$listen")
	gw_http[$name]=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$listen")
	gw_debug[$name]=$(grep -m1 '"message":"pprof listening"' "$dir/rtmpgate-$name.log" | sed -E 's/.*"debug":"([^"]+)".*/\1/')
	log "gateway $name: pid ${gw_pid[$name]} rtmp ${gw_rtmp[$name]} http ${gw_http[$name]}"
}
gws=(L)
[ "$mode" = compare ] && gws+=(S)
for g in "${gws[@]}"; do start_gw "$g"; done

# --- publishers ----------------------------------------------------------------------
end_s=$((settle_s + window_s))
total_s=$((end_s + 60))
load_pids=()
start_load() { # label gateway prefix clip
	"$dir/rtmpload" -url "rtmp://${gw_rtmp[$2]}/live" -n "$n" -prefix "$3" -clip "$4" -duration "${total_s}s" -loop \
		-ramp "$ramp" -batch "$batch" -progress 0 -json >"$dir/rtmpload-$1.json" 2>"$dir/rtmpload-$1.log" &
	pids+=("$!")
	load_pids+=("$!")
}
samples=$dir/samples.csv
echo "second,ms,L_ticks,L_rss_kb,S_ticks,S_rss_kb" >"$samples"
sample() {
	local now=${EPOCHREALTIME/./} row="$1,$(((${EPOCHREALTIME/./} - t0_us) / 1000))" g
	for g in L S; do
		if [ -n "${gw_pid[$g]:-}" ]; then row+=",$(cpu_ticks "${gw_pid[$g]}"),$(mem_kb VmRSS "${gw_pid[$g]}")"; else row+=",0,0"; fi
	done
	echo "$row" >>"$samples"
}
t0_us=${EPOCHREALTIME/./}
sample 0
start_load ladders L lad "$clips/ladder.flv"
if [ "$mode" = compare ]; then
	for i in 0 1 2; do start_load "single$i" S "r${i}x" "$clips/r$i.flv"; done
fi
log "$n ladders$([ "$mode" = compare ] && echo " and $((3 * n)) single streams") (ramp $ramp, batch $batch), steady window ${settle_s}-${end_s}s"
declare -A rx0 rx1
for ((i = 1; i <= end_s; i++)); do
	wait_us=$((t0_us + i * 1000000 - ${EPOCHREALTIME/./}))
	[ "$wait_us" -gt 0 ] && sleep "$((wait_us / 1000000)).$(printf %06d $((wait_us % 1000000)))"
	sample "$i"
	if [ "$i" = "$settle_s" ]; then
		for g in "${gws[@]}"; do rx0[$g]=$(metric "${gw_http[$g]}" rtmpgate_rtmp_bytes_received_total); done
		if [ "$profile" -gt 0 ]; then
			curl -s -o "$dir/cpu-L.pb.gz" "http://${gw_debug[L]}/debug/pprof/profile?seconds=$profile" &
			prof_pid=$!
			pids+=("$prof_pid")
		fi
	fi
done
for g in "${gws[@]}"; do rx1[$g]=$(metric "${gw_http[$g]}" rtmpgate_rtmp_bytes_received_total); done

# --- playlists and MPDs valid and advancing -----------------------------------------------
# Each document fetched twice, 6 s apart (curl -K, one keep-alive connection per
# pass). A media playlist: #EXTM3U, a media sequence, >= 2 segments, no
# #EXT-X-ENDLIST, advancing when its media sequence moved. A multivariant
# playlist: #EXTM3U and WANT_VARIANTS #EXT-X-STREAM-INF (the ladder, highest
# first), advancing when every variant's playlist (checked on its own) advanced. An MPD:
# type="dynamic", WANT_REPS video Representations, advancing when the end of its
# timelines' last segment moved (with number-based templates, the low-latency
# default, when its publishTime did).
check() { # label gateway list-file: lines "kind path"
	local label=$1 g=$2 list=$3 pass cfg
	for pass in 0 1; do
		cfg=$dir/curl-$label-$pass.cfg
		mkdir -p "$dir/doc-$label-$pass"
		awk -v base="http://${gw_http[$g]}" -v out="$dir/doc-$label-$pass" '{ printf "url = \"%s/%s\"\noutput = \"%s/%d\"\n", base, $2, out, NR }' "$list" >"$cfg"
		curl -s --max-time 120 -K "$cfg" || true
		[ "$pass" = 0 ] && sleep 6
	done
	awk -v d0="$dir/doc-$label-0" -v d1="$dir/doc-$label-1" '
		function attr(line, name) { return match(line, " " name "=\"[^\"]*\"") ? substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 4) + 0 : 0 }
		function scan(f, kind,   line, first, extinf, end, inf, reps, dyn, video, edge, e, pt) {
			seq = ""; first = ""; extinf = 0; end = 0; inf = 0; reps = 0; dyn = 0; video = 0; edge = 0; pt = ""
			while ((getline line < f) > 0) {
				if (first == "") first = line
				if (line ~ /^#EXT-X-MEDIA-SEQUENCE:/) { sub(/^[^:]*:/, "", line); seq = line + 0 }
				else if (line ~ /^#EXTINF:/) extinf++
				else if (line ~ /^#EXT-X-ENDLIST/) end = 1
				else if (line ~ /^#EXT-X-STREAM-INF:/) inf++
				if (line ~ /<MPD .*type="dynamic"/) dyn = 1
				if (line ~ /<AdaptationSet /) video = line ~ /contentType="video"/
				if (video && line ~ /<Representation /) reps++
				# The live edge: the end of the last S of the timelines, in their timescale.
				if (line ~ /<S /) { e = attr(line, "t") + attr(line, "d") * (attr(line, "r") + 1); if (e > edge) edge = e }
				if (match(line, /publishTime="[^"]*"/)) pt = substr(line, RSTART + 13, RLENGTH - 14)
			}
			close(f)
			if (kind == "media") { valid = first ~ /^#EXTM3U/ && seq != "" && extinf >= 2 && !end; return seq }
			if (kind ~ /^mv/) { valid = first ~ /^#EXTM3U/ && inf == substr(kind, 3) + 0; return inf }
			# Number-based templates (low latency) have no timeline: publishTime then.
			valid = first ~ /^<\?xml/ && dyn && pt != "" && reps == substr(kind, 4) + 0; return edge > 0 ? edge : pt
		}
		{ kind = $1; a = scan(d0 "/" NR, kind); v0 = valid; b = scan(d1 "/" NR, kind)
			n[kind]++
			if (v0 && valid) { ok[kind]++; if (kind ~ /^mv/ || b > a) adv[kind]++ } else if (bad++ < 5) print "invalid: " $2 > "/dev/stderr" }
		END { for (k in n) printf "%s %d %d %d\n", k, n[k], ok[k] + 0, adv[k] + 0 }' "$list" >"$dir/check-$label.txt"
}
{
	for ((i = 0; i < n; i++)); do
		printf -v s 'lad%04d' "$i"
		echo "mv3 live/$s/index.m3u8"
		echo "media live/$s/v/index.m3u8"
		echo "media live/$s/v1/v/index.m3u8"
		echo "media live/$s/v2/v/index.m3u8"
		echo "media live/$s/a/index.m3u8"
		echo "media live/$s/ts/index.m3u8"
		echo "mpd3 live/$s/index.mpd"
	done
} >"$dir/list-L.txt"
cpids=()
check L L "$dir/list-L.txt" &
cpids+=("$!")
if [ "$mode" = compare ]; then
	for ((i = 0; i < n; i++)); do
		for r in 0 1 2; do
			printf -v s 'r%sx%04d' "$r" "$i"
			echo "media live/$s/v/index.m3u8"
			echo "media live/$s/ts/index.m3u8"
			echo "mpd1 live/$s/index.mpd"
		done
	done >"$dir/list-S.txt"
	check S S "$dir/list-S.txt" &
	cpids+=("$!")
fi
for p in "${cpids[@]}"; do wait "$p" || true; done

# --- memory, store -----------------------------------------------------------------------
declare -A hwm store api
for g in "${gws[@]}"; do
	hwm[$g]=$(mem_kb VmHWM "${gw_pid[$g]}")
	store[$g]=$(metric "${gw_http[$g]}" rtmpgate_store_bytes)
	curl -s "http://${gw_http[$g]}/api/streams" >"$dir/streams-$g.json" || true
	api[$g]=$(jq -r '[(if type == "array" then . else .streams end)[] | .bytes] | add // 0' "$dir/streams-$g.json" 2>/dev/null || echo 0)
done
if [ -n "${prof_pid:-}" ]; then wait "$prof_pid" || true; fi

# --- publishers' verdict -------------------------------------------------------------------
for p in "${load_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${load_pids[@]}"; do wait "$p" || true; done
pub() { jq -r '"\(.publishers.connected) \(.publishers.failed) \(.publishers.disconnected_early) \(.publishers.stream_kbps | floor) \(.cpu.user_s + .cpu.sys_s | . * 10 | floor / 10)"' "$dir/rtmpload-$1.json" 2>/dev/null || echo "0 0 0 0 0"; }
declare -A conn fail disc kbps lcpu
read -r conn[L] fail[L] disc[L] kbps[L] lcpu[L] < <(pub ladders)
if [ "$mode" = compare ]; then
	conn[S]=0 fail[S]=0 disc[S]=0 kbps[S]=0 lcpu[S]=0
	for i in 0 1 2; do
		read -r c f d k u < <(pub "single$i")
		conn[S]=$((conn[S] + c)) fail[S]=$((fail[S] + f)) disc[S]=$((disc[S] + d)) kbps[S]=$((kbps[S] + k))
		lcpu[S]=$(awk -v a="${lcpu[S]}" -v b="$u" 'BEGIN { print a + b }')
	done
fi

# --- report ----------------------------------------------------------------------------------
col() { awk -F, -v a="$settle_s" -v b="$end_s" -v c="$1" -v hz="$hz" 'NR > 1 && $1 == a { t0 = $2; v0 = $c } NR > 1 && $1 == b { t1 = $2; v1 = $c; r1 = $(c + 1) }
	END { printf "%.1f %.2f %d\n", (t1 - t0) / 1000, (v1 - v0) / hz, r1 }' "$samples"; }
declare -A cpu rss mb
for g in "${gws[@]}"; do
	c=3
	[ "$g" = S ] && c=5
	read -r elapsed cpu[$g] rss[$g] < <(col "$c")
	mb[$g]=$(awk -v a="${rx0[$g]}" -v b="${rx1[$g]}" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
done
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { if (b + 0 == 0 || a == "-" || b == "-") print "-"; else printf f, a / b }'; }
status=0
{
	echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "run: MODE=$mode N=$n ladders (1920x1080 ${rates[0]}k, 1280x720 ${rates[1]}k, 640x360 ${rates[2]}k H.264 + AAC 128k, ${clip_s}s clip looped), rtmpload -batch $batch, ramp $ramp"
	echo "steady window: ${settle_s} to ${end_s} s from the first publish (${elapsed} s)"
	echo
	if [ "$mode" = compare ]; then
		printf '%-48s %14s %14s %8s\n' metric "L: $n ladders" "S: $((3 * n)) singles" ratio
		row() { printf '%-48s %14s %14s %8s\n' "$1" "$2" "$3" "$(div "$2" "$3" %.2f)"; }
	else
		printf '%-48s %14s\n' metric "L: $n ladders"
		row() { printf '%-48s %14s\n' "$1" "$2"; }
	fi
	row "  CPU seconds over the window" "${cpu[L]}" "${cpu[S]:-}"
	row "  MB received over the window (RTMP)" "${mb[L]}" "${mb[S]:-}"
	row "  CPU ms per MB received" "$(div "$(div "${cpu[L]}" 0.001 %.0f)" "${mb[L]}" %.3f)" "$(div "$(div "${cpu[S]:-0}" 0.001 %.0f)" "${mb[S]:-0}" %.3f)"
	row "  cores busy" "$(div "${cpu[L]}" "$elapsed")" "$(div "${cpu[S]:-0}" "$elapsed")"
	row "  Mbit/s received" "$(div "${mb[L]}" "$elapsed" | awk '{ printf "%.1f", $1 * 8 }')" "$(div "${mb[S]:-0}" "$elapsed" | awk '{ printf "%.1f", $1 * 8 }')"
	row "  RSS at window end (kB)" "${rss[L]}" "${rss[S]:-}"
	row "  peak RSS, VmHWM (kB)" "${hwm[L]}" "${hwm[S]:-}"
	row "  store bytes (rtmpgate_store_bytes)" "${store[L]}" "${store[S]:-}"
	row "  /api/streams bytes, summed" "${api[L]}" "${api[S]:-}"
	row "  peak RSS / store bytes" "$(div "$((hwm[L] * 1024))" "${store[L]}" %.2f)" "$([ "$mode" = compare ] && div "$((hwm[S] * 1024))" "${store[S]}" %.2f)"
	row "  publishers connected (of $n / $((3 * n)))" "${conn[L]}" "${conn[S]:-}"
	row "  publishers failed / disconnected early" "${fail[L]}/${disc[L]}" "$([ "$mode" = compare ] && echo "${fail[S]}/${disc[S]}")"
	row "  publish kbit/s (per publisher, summed)" "${kbps[L]}" "${kbps[S]:-}"
	row "  rtmpload CPU seconds (whole run)" "${lcpu[L]}" "${lcpu[S]:-}"
	for g in "${gws[@]}"; do
		echo
		echo "gateway $g documents (kind, fetched, valid both times, advancing in 6 s):"
		sort "$dir/check-$g.txt" | sed 's/^/  /'
	done
	echo
	echo "cores busy by 10 s from the first publish:"
	awk -F, -v hz="$hz" 'NR > 1 { t[$1] = $2; l[$1] = $3; s[$1] = $5; last = $1 }
		END { for (a = 0; a + 10 <= last; a += 10) { b = a + 10; el = (t[b] - t[a]) / 1000
			printf "  %3d-%-3d L %.3f  S %.3f\n", a, b, (l[b] - l[a]) / hz / el, (s[b] - s[a]) / hz / el } }' "$samples"
} | tee "$dir/results.txt"
if [ "$profile" -gt 0 ] && [ -s "$dir/cpu-L.pb.gz" ]; then
	{
		echo
		echo "CPU profile of gateway L (${profile}s from ${settle_s}s):"
		go tool pprof -top -nodecount 30 "$dir/rtmpgate" "$dir/cpu-L.pb.gz" 2>/dev/null | sed -n '1,40p'
	} | tee -a "$dir/results.txt"
fi
for g in "${gws[@]}"; do
	awk '$2 != $3 || $2 != $4 { exit 1 }' "$dir/check-$g.txt" || status=1
	[ "${fail[$g]}" = 0 ] && [ "${disc[$g]}" = 0 ] || status=1
done
exit "$status"
