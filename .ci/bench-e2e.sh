#!/usr/bin/env bash
# End-to-end benchmark (not in CI): rtmpgate and nginx-rtmp side by side, same run,
# same publishers. Builds rtmpgate and rtmpload, makes a clip, starts both servers on
# free loopback ports (nginx-rtmp with HLS and DASH on, fragments on tmpfs), drives
# each with N looped ~1 Mbit/s publishers (one rtmpload per server, or N real
# `ffmpeg -re -stream_loop -1 -c copy` processes per server, concurrently), samples
# each server's CPU seconds (utime+stime from /proc/PID/stat; nginx: master +
# workers) and RSS every second from the first publish, and reports two phases: the
# first minute of the streams' life (fresh segment memory, first init segments and
# playlists: what every short or reconnecting stream pays) and the steady state
# after a settle time. Then it checks every stream's playlist is valid and
# advancing, runs wrk against one live stream's playlist and a segment on each,
# and prints the figures and the ratios rtmpgate / nginx-rtmp.
#
#   make bench-e2e                           (N=50, both phases, rtmpload)
#   PUBLISHER=ffmpeg N=20 make bench-e2e     (real ffmpeg publishers)
#   CODEC=hevc N=50 SETTLE=75 make bench-e2e (rtmpgate alone: Enhanced RTMP HEVC; the
#                                             fixture's ~4 s segments fill the store by ~80 s)
#   N=1000 ONLY=rtmpgate PHASE=steady DURATION=60s make bench-e2e
#   N=200 ONLY=rtmpgate PROFILE=30 make bench-e2e   (pprof CPU + allocs of the window)
#   N=50 ONLY=rtmpgate PROFILE=30 PROFILE_AT="0 60" make bench-e2e  (the store filling
#                                             against the store full)
#
# Settings (environment):
#   N             publishers per server (50)
#   PUBLISHER     rtmpload | ffmpeg (rtmpload). ffmpeg: N `ffmpeg -re -stream_loop -1
#                 -i CLIP -c copy -f flv` per server, started over the ramp in a
#                 process group of their own that the EXIT trap ends
#   CODEC         h264 | hevc (h264). hevc publishes the Enhanced RTMP fixture
#                 ../shared/fixtures/enhanced-rtmp/hevc-aac.flv with rtmpload to
#                 rtmpgate alone (nginx-rtmp takes no HEVC) and checks the CMAF
#                 video playlists (v/index.m3u8) instead of the TS ones
#   CLIP          an FLV file to publish instead of the made clip (or the fixture)
#   PHASE         first | steady | both (both): which windows are reported
#   FIRST_WINDOW  the first-minute window, from the first publish (60s)
#   DURATION      the steady-state window: CPU is counted over it (60s)
#   SETTLE        time from the first publish to the steady window (RAMP + 30s):
#                 the store fills for the window plus RFC 8216's retention, about
#                 26 s. The two windows may overlap: both read the same samples
#   ONLY          both | rtmpgate | nginx (both; rtmpgate when CODEC=hevc)
#   RAMP          spread of the publishers' starts (5s, 60s from N=500: a
#                 publisher's setup is four round trips through a busy gateway)
#   WRK_DURATION  per wrk run (8s); WRK_CONNS (32), WRK_THREADS (1); WRK=0 skips wrk
#   CLIP_SECONDS  length of the made, looped clip (10)
#   BATCH         rtmpload's sending step (1ms: a write per frame, as encoders
#                 send; 20ms from N=500: one write per ~1.5 frames of each track,
#                 so the load generator's own write(2) calls leave the gateway CPU)
#   PROFILE       seconds of CPU profile to take from rtmpgate's debug listener
#                 from the steady window's start, plus an allocs delta over the
#                 same time, a heap profile, and a CPU profile of the wrk playlist
#                 run (0: off)
#   PROFILE_AT    when the profiles start, in seconds from the first publish, one
#                 or more (e.g. "0 60": the store filling against the store full;
#                 windows must not overlap). Default: the steady window's start
#                 (0 when PHASE=first). Each gets cpu-AT.pb.gz, allocs-AT-{0,1}.pb.gz
#                 and heap-AT.pb.gz
#   GATEWAY_ARGS  extra rtmpgate flags
#   RTMPLOAD      a prebuilt rtmpload binary to use instead of building one
#   RTMPGATE      a prebuilt rtmpgate binary to use instead of building one (to
#                 compare two builds, each against nginx-rtmp in its own run)
#   BENCH_DIR     output directory (a new /tmp/rtmpgate-bench.XXXXXX): binaries,
#                 clip, logs, rtmpload JSON or ffmpeg logs, samples.csv (second,
#                 CPU ticks and RSS of each server, rtmpgate's minor page faults
#                 and AnonHugePages), wrk output, profiles, results.txt
# Exits non-zero when a publisher failed or disconnected, or a playlist check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${N:-50}
window=${DURATION:-60s}
window_s=${window%s}
first=${FIRST_WINDOW:-60s}
first_s=${first%s}
phase=${PHASE:-both}
publisher=${PUBLISHER:-rtmpload}
codec=${CODEC:-h264}
only=${ONLY:-$([ "$codec" = hevc ] && echo rtmpgate || echo both)}
ramp=${RAMP:-$([ "$n" -ge 500 ] && echo 60s || echo 5s)}
wrk_d=${WRK_DURATION:-8s}
wrk_c=${WRK_CONNS:-32}
wrk_t=${WRK_THREADS:-1}
clip_s=${CLIP_SECONDS:-10}
batch=${BATCH:-$([ "$n" -ge 500 ] && echo 20ms || echo 1ms)}
profile=${PROFILE:-0}
gateway_args=${GATEWAY_ARGS:-}
dir=${BENCH_DIR:-$(mktemp -d /tmp/rtmpgate-bench.XXXXXX)}
case "$only" in both | rtmpgate | nginx) ;; *) echo "ONLY=$only: want both, rtmpgate or nginx" >&2; exit 2 ;; esac
case "$phase" in both | first | steady) ;; *) echo "PHASE=$phase: want both, first or steady" >&2; exit 2 ;; esac
case "$publisher" in rtmpload | ffmpeg) ;; *) echo "PUBLISHER=$publisher: want rtmpload or ffmpeg" >&2; exit 2 ;; esac
case "$codec" in h264) ;; hevc)
	[ "$only" = rtmpgate ] || { echo "CODEC=hevc: rtmpgate only (nginx-rtmp takes no HEVC), not ONLY=$only" >&2; exit 2; }
	# Debian 12's ffmpeg (5.1) cannot write HEVC into FLV.
	[ "$publisher" = rtmpload ] || { echo "CODEC=hevc: PUBLISHER=rtmpload only (ffmpeg 5.1 cannot send Enhanced RTMP)" >&2; exit 2; } ;;
*) echo "CODEC=$codec: want h264 or hevc" >&2; exit 2 ;;
esac
[[ "$window_s" =~ ^[0-9]+$ ]] || { echo "DURATION=$window: want whole seconds like 60s" >&2; exit 2; }
[[ "$first_s" =~ ^[0-9]+$ ]] && [ "$first_s" -gt 0 ] || { echo "FIRST_WINDOW=$first: want whole seconds like 60s" >&2; exit 2; }
[ "$n" -le 200 ] || [ "$publisher" = rtmpload ] || { echo "PUBLISHER=ffmpeg: N=$n is more processes than this script starts (200 per server)" >&2; exit 2; }
do_first() { [ "$phase" != steady ]; }
do_steady() { [ "$phase" != first ]; }
mkdir -p "$dir"
log() { echo "bench: $*" >&2; }
run_gw() { [ "$only" != nginx ]; }
run_ngx() { [ "$only" != rtmpgate ]; }

# --- tools ---------------------------------------------------------------------
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
if run_ngx; then
	command -v nginx >/dev/null || need+=(nginx)
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
fi
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
	# nginx is only a peer here: never leave the packaged service on port 80.
	systemctl disable --now nginx >/dev/null 2>&1 || true
fi

# --- build, clip -----------------------------------------------------------------
log "output in $dir"
if [ -n "${RTMPGATE:-}" ]; then
	cp "$RTMPGATE" "$dir/rtmpgate"
else
	go build -trimpath -o "$dir/rtmpgate" ./cmd/rtmpgate
fi
if [ -n "${RTMPLOAD:-}" ]; then
	cp "$RTMPLOAD" "$dir/rtmpload"
else
	go build -trimpath -o "$dir/rtmpload" ./cmd/rtmpload
fi
if [ -n "${CLIP:-}" ]; then
	clip=$(realpath "$CLIP")
elif [ "$codec" = hevc ]; then
	clip=$(realpath ../shared/fixtures/enhanced-rtmp/hevc-aac.flv)
else
	[ -f "$dir/clips/av.flv" ] || bash testdata/make-clips.sh "$dir/clips" "$clip_s"
	clip=$dir/clips/av.flv
fi
[ -f "$clip" ] || { log "no clip $clip"; exit 1; }
# The playlist every stream is checked on (and wrk fetched): TS for H.264, as
# nginx-rtmp writes; CMAF video for HEVC.
gw_playlist=ts/index.m3u8
[ "$codec" = hevc ] && gw_playlist=v/index.m3u8

# Every process we start is remembered here and ended on exit, whatever happens.
# ffmpeg publishers run in process groups of their own (pgroups: the group ids),
# ended as groups so that none outlives the run.
pids=()
pgroups=()
shm=
cleanup() {
	local p
	for p in "${pgroups[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pgroups[@]}"; do
		for _ in $(seq 50); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$shm" ]; then rm -rf "$shm"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cpu_ticks PID...: utime+stime in clock ticks, summed. Field 2 (comm) may hold
# spaces, so fields are counted after its closing parenthesis.
cpu_ticks() {
	local sum=0 p t
	for p in "$@"; do
		t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		sum=$((sum + t))
	done
	echo "$sum"
}
# mem_kb FIELD PID...: VmRSS or VmHWM in kB, summed.
mem_kb() {
	local f=$1 sum=0 p v
	shift
	for p in "$@"; do
		v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
hz=$(getconf CLK_TCK)

# --- rtmpgate --------------------------------------------------------------------
gw_pid=
if run_gw; then
	"$dir/rtmpgate" -rtmp 127.0.0.1:0 -http 127.0.0.1:0 -debug-addr 127.0.0.1:0 -log-level info \
		-max-conns-per-ip $((n + 16)) -max-conns $((2 * n + 64)) -max-streams $((n + 16)) \
		-max-store-bytes $(((n + 16) * 8 << 20)) -linger 5s $gateway_args 2>"$dir/rtmpgate.log" &
	gw_pid=$!
	pids+=("$gw_pid")
	for _ in $(seq 100); do
		grep -q '"message":"listening"' "$dir/rtmpgate.log" 2>/dev/null && break
		kill -0 "$gw_pid" 2>/dev/null || { cat "$dir/rtmpgate.log" >&2; exit 1; }
		sleep 0.1
	done
	listen=$(grep -m1 '"message":"listening"' "$dir/rtmpgate.log" || true)
	if [ -z "$listen" ]; then
		log "rtmpgate did not log its addresses"
		exit 1
	fi
	gw_rtmp=$(sed -E 's/.*"rtmp":"([^"]+)".*/\1/' <<<"$listen")
	gw_http=$(sed -E 's/.*"http":"([^"]+)".*/\1/' <<<"$listen")
	gw_debug=$(grep -m1 '"message":"pprof listening"' "$dir/rtmpgate.log" | sed -E 's/.*"debug":"([^"]+)".*/\1/')
	log "rtmpgate pid $gw_pid rtmp $gw_rtmp http $gw_http debug $gw_debug"
fi

# --- nginx-rtmp ------------------------------------------------------------------
ngx_master=
ngx_pids() { [ -n "$ngx_master" ] && echo "$ngx_master" $(pgrep -P "$ngx_master" 2>/dev/null || true); }
if run_ngx; then
	shm=$(mktemp -d /dev/shm/rtmpgate-bench.XXXXXX)
	mkdir -p "$shm/hls" "$shm/dash" "$dir/nginx"
	ngx_rtmp=$(free_port)
	ngx_http=$(free_port)
	cat >"$dir/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile $(ulimit -Hn);
user root;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections $((4 * n + 1024)); }
rtmp {
  server {
    listen 127.0.0.1:$ngx_rtmp;
    application live {
      live on;
      hls on;
      hls_path $shm/hls;
      hls_fragment 2s;
      hls_playlist_length 12s;
      dash on;
      dash_path $shm/dash;
      dash_fragment 2s;
      dash_playlist_length 12s;
    }
  }
}
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; application/dash+xml mpd; video/mp4 m4v m4a; }
  server {
    listen 127.0.0.1:$ngx_http;
    location /hls/ { alias $shm/hls/; add_header Cache-Control no-cache; }
    location /dash/ { alias $shm/dash/; add_header Cache-Control no-cache; }
  }
}
EOF
	# Started under another name: test setups on a shared machine run
	# `pkill -x nginx` (.ci/install-test-deps.sh), which must not end this one.
	ln -sf "$(command -v nginx)" "$dir/nginx/ngx-bench"
	"$dir/nginx/ngx-bench" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>"$dir/nginx/stderr.log" &
	ngx_master=$!
	pids+=("$ngx_master")
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$ngx_http/" && break
		kill -0 "$ngx_master" 2>/dev/null || { cat "$dir/nginx/stderr.log" "$dir/nginx/error.log" >&2; exit 1; }
		sleep 0.1
	done
	log "nginx-rtmp pids $(ngx_pids | tr '\n' ' ')rtmp 127.0.0.1:$ngx_rtmp http 127.0.0.1:$ngx_http, fragments in $shm"
fi

# --- publishers ----------------------------------------------------------------------
# The publishers run through the ramp, the windows, the playlist check and the wrk
# runs; they must all still be on at the end.
ramp_s=${ramp%s}
settle_s=${SETTLE:-$((ramp_s + 30))}; settle_s=${settle_s%s}
wrk_s=${wrk_d%s}
end_s=0
do_first && end_s=$first_s
do_steady && [ $((settle_s + window_s)) -gt "$end_s" ] && end_s=$((settle_s + window_s))
total_s=$((end_s + 20 + 4 * (wrk_s + 2) + 60))
start_rtmpload() { # name url
	local prof=
	[ "$profile" -gt 0 ] && prof=$dir/rtmpload-$1.cpu.pb.gz
	RTMPLOAD_CPUPROFILE=$prof "$dir/rtmpload" -url "$2" -n "$n" -prefix bench -clip "$clip" -duration "${total_s}s" -loop -ramp "$ramp" -batch "$batch" \
		-progress 0 -json >"$dir/rtmpload-$1.json" 2>"$dir/rtmpload-$1.log" &
	pids+=("$!")
	load_pids+=("$!")
}
# The ffmpeg launcher: run by setsid as the leader of a new process group, so that
# every ffmpeg it starts can be ended with the group. It writes its group id first;
# each ffmpeg runs under a subshell that records the ffmpeg's pid, and its start,
# end and exit status if it ends by itself. ffmpeg loops the clip with its
# timestamps running on and reads it at its native rate (-re), as an encoder sends.
cat >"$dir/ffmpeg-launch.sh" <<'EOF'
d=$1 url=$2 clip=$3 n=$4 ramp_s=$5
awk '{ sub(/.*\) /, ""); print $3 }' /proc/$$/stat >"$d/pgid"
t0=${EPOCHREALTIME/./}
for ((i = 0; i < n; i++)); do
	wait_us=$((t0 + ramp_s * 1000000 * i / n - ${EPOCHREALTIME/./}))
	[ "$wait_us" -gt 0 ] && sleep "$((wait_us / 1000000)).$(printf %06d $((wait_us % 1000000)))"
	printf -v name 'bench%04d' "$i"
	(
		start=${EPOCHREALTIME/./}
		ffmpeg -hide_banner -nostdin -loglevel warning -re -stream_loop -1 -i "$clip" -c copy \
			-f flv -flvflags no_duration_filesize "$url/$name" </dev/null >/dev/null 2>"$d/$name.log" &
		echo "$!" >>"$d/pids"
		wait "$!"
		rc=$?
		echo "$name $rc $start ${EPOCHREALTIME/./}" >>"$d/exits"
	) &
done
wait
EOF
start_ffmpeg() { # name url
	local d=$dir/ffmpeg-$1 p pg=
	mkdir -p "$d"
	: >"$d/pids"
	: >"$d/exits"
	rm -f "$d/pgid"
	setsid bash "$dir/ffmpeg-launch.sh" "$d" "$2" "$clip" "$n" "$ramp_s" &
	p=$!
	pids+=("$p")
	for _ in $(seq 50); do
		pg=$(cat "$d/pgid" 2>/dev/null || true)
		[ -n "$pg" ] && break
		sleep 0.05
	done
	# Only a group of its own is ever signalled as a group (never this script's).
	if [ "$pg" = "$p" ] && [ "$pg" != "$(awk '{ sub(/.*\) /, ""); print $3 }' /proc/$$/stat)" ]; then
		pgroups+=("$pg")
	else
		log "ffmpeg launcher $p: process group '${pg:-?}' is not its own"
		exit 1
	fi
}
# ffmpeg_verdict name: connected failed disconnected_early cpu_s, read before the
# group is ended. An ffmpeg that ended by itself within 10 s of its start counts as
# failed (it never got to publish), later as disconnected early; CPU is the
# running ones' utime+stime.
ffmpeg_verdict() {
	local d=$dir/ffmpeg-$1 failed disc ticks
	read -r failed disc < <(awk '{ if ($4 - $3 < 10000000) f++; else e++ } END { print f + 0, e + 0 }' "$d/exits")
	ticks=$(cpu_ticks $(cat "$d/pids"))
	echo "$((n - failed)) $failed $disc $(awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }')"
}
load_pids=()
samples=$dir/samples.csv
# sample I: one row of samples.csv: second, ms since the first publish, then per
# server its CPU ticks and RSS (kB); 0 for a server not run.
# The gateway's minor page faults and huge-page memory follow (how much of its RSS
# growth faulted in, and in which page size).
sample() {
	local gt=0 gr=0 nt=0 nr=0 gf=0 gh=0 np now=${EPOCHREALTIME/./}
	if run_gw; then
		gt=$(cpu_ticks "$gw_pid") gr=$(mem_kb VmRSS "$gw_pid")
		gf=$(awk '{ sub(/.*\) /, ""); print $8 }' "/proc/$gw_pid/stat" 2>/dev/null || echo 0)
		gh=$(awk '$1 == "AnonHugePages:" { print $2 }' "/proc/$gw_pid/smaps_rollup" 2>/dev/null || echo 0)
	fi
	if run_ngx; then np=$(ngx_pids); nt=$(cpu_ticks $np) nr=$(mem_kb VmRSS $np); fi
	echo "$1,$(((now - t0_us) / 1000)),$gt,$gr,$nt,$nr,$gf,${gh:-0}" >>"$samples"
}
echo "second,ms,rtmpgate_ticks,rtmpgate_rss_kb,nginx_ticks,nginx_rss_kb,rtmpgate_minflt,rtmpgate_anon_huge_kb" >"$samples"
t0_us=${EPOCHREALTIME/./}
sample 0
if [ "$publisher" = ffmpeg ]; then
	if run_gw; then start_ffmpeg rtmpgate "rtmp://$gw_rtmp/live"; fi
	if run_ngx; then start_ffmpeg nginx "rtmp://127.0.0.1:$ngx_rtmp/live"; fi
	log "$n ffmpeg publishers per server (ramp $ramp, clip $(basename "$clip"), until the end of the run)"
else
	if run_gw; then start_rtmpload rtmpgate "rtmp://$gw_rtmp/live"; fi
	if run_ngx; then start_rtmpload nginx "rtmp://127.0.0.1:$ngx_rtmp/live"; fi
	log "$n rtmpload publishers per server for ${total_s}s (ramp $ramp, batch $batch, clip $(basename "$clip"))"
fi
log "phase $phase: first window 0-${first_s}s, steady window ${settle_s}-$((settle_s + window_s))s from the first publish; sampling to ${end_s}s"

# --- samples: CPU and RSS every second from the first publish ------------------------
# The rtmpgate CPU profile covers the steady window's start (the first publish when
# only the first minute is measured).
prof_default=0
do_steady && prof_default=$settle_s
read -r -a prof_ats <<<"${PROFILE_AT:-$prof_default}"
prof_pid=
prof_cur=
# finish_profile: the allocs delta and heap of the profile that ran.
finish_profile() {
	[ -n "$prof_pid" ] || return 0
	wait "$prof_pid" || true
	curl -s -o "$dir/allocs-$prof_cur-1.pb.gz" "http://$gw_debug/debug/pprof/allocs"
	curl -s -o "$dir/heap-$prof_cur.pb.gz" "http://$gw_debug/debug/pprof/heap"
	prof_pid=
}
start_profile() { # at
	finish_profile
	prof_cur=$1
	curl -s -o "$dir/allocs-$1-0.pb.gz" "http://$gw_debug/debug/pprof/allocs"
	curl -s -o "$dir/cpu-$1.pb.gz" "http://$gw_debug/debug/pprof/profile?seconds=$profile" &
	prof_pid=$!
	pids+=("$prof_pid")
}
# A profile from second 0 starts with the publishers (before the first sample's
# wait); later ones at the second's sample.
for ((i = 1; i <= end_s; i++)); do
	if run_gw && [ "$profile" -gt 0 ]; then
		for at in "${prof_ats[@]}"; do [ "$i" = $((at + 1)) ] && start_profile "$at"; done
	fi
	wait_us=$((t0_us + i * 1000000 - ${EPOCHREALTIME/./}))
	[ "$wait_us" -gt 0 ] && sleep "$((wait_us / 1000000)).$(printf %06d $((wait_us % 1000000)))"
	sample "$i"
done
finish_profile
# window FROM TO: "elapsed_s gw_cpu_s gw_rss_start gw_rss_end gw_rss_peak ngx_cpu_s
# ngx_rss_start ngx_rss_end ngx_rss_peak" over the samples of seconds FROM to TO.
window_figures() {
	awk -F, -v a="$1" -v b="$2" -v hz="$hz" 'NR > 1 && $1 >= a && $1 <= b {
		if ($1 == a) { t0 = $2; g0 = $3; gs = $4; n0 = $5; ns = $6 }
		if ($1 == b) { t1 = $2; g1 = $3; ge = $4; n1 = $5; ne = $6 }
		if ($4 > gp) gp = $4
		if ($6 > np) np = $6
	} END { printf "%.1f %.2f %d %d %d %.2f %d %d %d\n", (t1 - t0) / 1000, (g1 - g0) / hz, gs, ge, gp, (n1 - n0) / hz, ns, ne, np }' "$samples"
}
read -r first_el gw_first_cpu gw_first_rss0 gw_first_rss1 gw_first_peak ngx_first_cpu ngx_first_rss0 ngx_first_rss1 ngx_first_peak < <(window_figures 0 "$first_s")
read -r elapsed gw_cpu gw_rss0 gw_rss1_w gw_steady_peak ngx_cpu ngx_rss0 ngx_rss1_w ngx_steady_peak < <(window_figures "$settle_s" $((settle_s + window_s)))

# --- playlists valid and advancing ------------------------------------------------------
# Every stream's playlist (TS; CMAF video for HEVC) fetched twice, 6 s apart, over one keep-alive
# connection (curl -K): it must parse (#EXTM3U, a media sequence, >= 2 segments, no
# #EXT-X-ENDLIST) and its media sequence must have moved on.
check_playlists() { # name base-url path-format
	local name=$1 base=$2 fmt=$3 pass i cfg path adv=0 ok=0
	for pass in 0 1; do
		cfg=$dir/curl-$name-$pass.cfg
		mkdir -p "$dir/pl-$name-$pass"
		: >"$cfg"
		for ((i = 0; i < n; i++)); do
			printf -v path "$fmt" "$i"
			printf 'url = "%s/%s"\noutput = "%s/pl-%s-%s/%d.m3u8"\n' "$base" "$path" "$dir" "$name" "$pass" "$i" >>"$cfg"
		done
		curl -s --max-time 60 -K "$cfg" || true
		[ "$pass" = 0 ] && sleep 6
	done
	# One awk over all 2N files (forks per file are too slow at N=1000 on a busy machine).
	read -r ok adv < <(for ((i = 0; i < n; i++)); do echo "$dir/pl-$name-0/$i.m3u8 $dir/pl-$name-1/$i.m3u8"; done |
		awk '
		function scan(f,   line, seq, first, extinf, end) {
			seq = ""; first = ""; extinf = 0; end = 0
			while ((getline line < f) > 0) {
				if (first == "") first = line
				if (line ~ /^#EXT-X-MEDIA-SEQUENCE:/) { sub(/^[^:]*:/, "", line); seq = line + 0 }
				else if (line ~ /^#EXTINF:/) extinf++
				else if (line ~ /^#EXT-X-ENDLIST/) end = 1
			}
			close(f)
			valid = first ~ /^#EXTM3U/ && seq != "" && extinf >= 2 && !end
			return seq
		}
		{ a = scan($1); b = scan($2); if (valid && a != "") { ok++; if (b > a) adv++ } }
		END { print ok + 0, adv + 0 }')
	echo "$ok $adv" >"$dir/pl-$name.result"
}
cpids=()
run_gw && { check_playlists rtmpgate "http://$gw_http" "live/bench%04d/$gw_playlist" & cpids+=("$!"); }
run_ngx && { check_playlists nginx "http://127.0.0.1:$ngx_http" 'hls/bench%04d.m3u8' & cpids+=("$!"); }
for p in "${cpids[@]}"; do wait "$p" || true; done
read -r gw_pl_ok gw_pl_adv < <(cat "$dir/pl-rtmpgate.result" 2>/dev/null || echo "- -")
read -r ngx_pl_ok ngx_pl_adv < <(cat "$dir/pl-nginx.result" 2>/dev/null || echo "- -")

# --- memory --------------------------------------------------------------------------
gw_hwm=0 ngx_hwm=0 store=0 api_bytes=0 api_segs=0 avail=-
if run_gw; then
	gw_hwm=$(mem_kb VmHWM "$gw_pid")
	curl -s "http://$gw_http/metrics" >"$dir/metrics.txt" || true
	store=$(awk '$1 == "rtmpgate_store_bytes" { printf "%.0f", $2 }' "$dir/metrics.txt")
	# Segment availability (closing keyframe to listed): count and p50/p99 from the
	# histogram's cumulative buckets, interpolated within the bucket as Prometheus'
	# histogram_quantile does.
	avail=$(awk '
		/^rtmpgate_segment_availability_delay_seconds_bucket/ {
			match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
			n++; b[n] = (le == "+Inf") ? -1 : le + 0; c[n] = $NF + 0
		}
		function q(p,   r, i, lo, prev) {
			r = p * c[n]; lo = 0; prev = 0
			for (i = 1; i <= n; i++) {
				if (c[i] >= r) {
					if (b[i] < 0) return lo
					return lo + (b[i] - lo) * (c[i] > prev ? (r - prev) / (c[i] - prev) : 1)
				}
				lo = b[i]; prev = c[i]
			}
		}
		END { if (n == 0 || c[n] == 0) { print "no segments"; exit }
			printf "%d segments, p50 %.1f ms, p99 %.1f ms", c[n], q(0.5) * 1000, q(0.99) * 1000 }' "$dir/metrics.txt")
	curl -s "http://$gw_http/api/streams" >"$dir/streams.json" || true
	read -r api_bytes api_segs < <(jq -r '[(if type == "array" then . else .streams end)[] | select(.name | startswith("bench"))] |
		"\((map(.bytes) | add // 0) / (length | if . == 0 then 1 else . end) | floor) \((map(.segments) | add // 0) / (length | if . == 0 then 1 else . end))"' \
		"$dir/streams.json" 2>/dev/null || echo "0 0")
fi
if run_ngx; then
	ngx_hwm=$(mem_kb VmHWM $(ngx_pids))
fi

# --- wrk -----------------------------------------------------------------------------
# One live stream on each: its playlist (rtmpgate renders it once per change and
# serves it from memory; nginx serves the file nginx-rtmp rewrote on tmpfs), then
# its newest TS segment. Server CPU is counted over each run.
wrk_run() { # label url pid...
	local label=$1 url=$2 c0 c1 out
	shift 2
	c0=$(cpu_ticks "$@")
	out=$(wrk -t "$wrk_t" -c "$wrk_c" -d "$wrk_d" "$url" 2>&1 || true)
	c1=$(cpu_ticks "$@")
	echo "$out" >"$dir/wrk-$label.txt"
	local rps mbs non2xx
	rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
	mbs=$(awk '/^Transfer\/sec:/ { v = $2; u = substr(v, length(v) - 1); v += 0;
		if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; else if (u != "MB") v /= 1048576; printf "%.0f", v }' <<<"$out")
	non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
	echo "${rps:-0} ${mbs:-0} ${non2xx:-0} $(((c1 - c0) * 1000 / hz))"
}
newest_segment() { # playlist-url: prints the URL of the newest segment
	local pl base
	pl=$(curl -s "$1")
	base=${1%/*}
	awk '!/^#/ && NF { s = $0 } END { print s }' <<<"$pl" | sed -E "s|^([^h/])|$base/\1|"
}
gw_wrk_pl="- - - -" ngx_wrk_pl="- - - -" gw_wrk_seg="- - - -" ngx_wrk_seg="- - - -" gw_seg= ngx_seg=
if [ "${WRK:-1}" != 0 ]; then
	if run_gw; then
		pp=
		if [ "$profile" -gt 0 ]; then
			curl -s -o "$dir/cpu-playlist.pb.gz" "http://$gw_debug/debug/pprof/profile?seconds=$wrk_s" &
			pp=$!
		fi
		gw_wrk_pl=$(wrk_run rtmpgate-playlist "http://$gw_http/live/bench0000/$gw_playlist" "$gw_pid")
		if [ -n "$pp" ]; then wait "$pp" || true; fi
		gw_seg=$(newest_segment "http://$gw_http/live/bench0000/$gw_playlist")
		gw_wrk_seg=$(wrk_run rtmpgate-segment "$gw_seg" "$gw_pid")
	fi
	if run_ngx; then
		ngx_wrk_pl=$(wrk_run nginx-playlist "http://127.0.0.1:$ngx_http/hls/bench0000.m3u8" $(ngx_pids))
		ngx_seg=$(newest_segment "http://127.0.0.1:$ngx_http/hls/bench0000.m3u8")
		ngx_wrk_seg=$(wrk_run nginx-segment "$ngx_seg" $(ngx_pids))
	fi
fi

# --- publishers' verdict ---------------------------------------------------------------------
# The publishers were given time to spare; rtmpload ends on SIGINT now (counted as
# interrupted, not disconnected) and still writes its summary. ffmpeg publishers
# are judged first, then their process groups are ended (TERM, then KILL).
pub() { # name: connected failed disconnected_early stream_kbps cpu_s
	jq -r '"\(.publishers.connected) \(.publishers.failed) \(.publishers.disconnected_early) \(.publishers.stream_kbps | floor) \(.cpu.user_s + .cpu.sys_s | . * 10 | floor / 10)"' \
		"$dir/rtmpload-$1.json" 2>/dev/null || echo "0 0 0 0 0"
}
# The clip's bit rate (audio and video payload), for the report when ffmpeg publishes.
clip_kbps() {
	ffprobe -v error -show_entries format=duration,size -of csv=p=0 "$clip" 2>/dev/null |
		awk -F, '$1 > 0 { printf "%d", $2 * 8 / $1 / 1000 }'
}
if [ "$publisher" = ffmpeg ]; then
	kbps=$(clip_kbps)
	read -r gw_conn gw_fail gw_disc gw_load_cpu < <(if run_gw; then ffmpeg_verdict rtmpgate; else echo "- - - -"; fi)
	read -r ngx_conn ngx_fail ngx_disc ngx_load_cpu < <(if run_ngx; then ffmpeg_verdict nginx; else echo "- - - -"; fi)
	gw_kbps=$kbps ngx_kbps=$kbps
	for p in "${pgroups[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	for p in "${pgroups[@]}"; do
		for _ in $(seq 50); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$p" 2>/dev/null || true
	done
	pgroups=()
else
	for p in "${load_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${load_pids[@]}"; do wait "$p" || true; done
	read -r gw_conn gw_fail gw_disc gw_kbps gw_load_cpu < <(if run_gw; then pub rtmpgate; else echo "- - - - -"; fi)
	read -r ngx_conn ngx_fail ngx_disc ngx_kbps ngx_load_cpu < <(if run_ngx; then pub nginx; else echo "- - - - -"; fi)
fi

# --- report ------------------------------------------------------------------------------------
read -r gw_pl_rps gw_pl_mbs gw_pl_err gw_pl_cpu <<<"$gw_wrk_pl"
read -r ngx_pl_rps ngx_pl_mbs ngx_pl_err ngx_pl_cpu <<<"$ngx_wrk_pl"
read -r gw_seg_rps gw_seg_mbs gw_seg_err gw_seg_cpu <<<"$gw_wrk_seg"
read -r ngx_seg_rps ngx_seg_mbs ngx_seg_err ngx_seg_cpu <<<"$ngx_wrk_seg"
# A server not run shows "-" (its samples are zeros).
if ! run_gw; then gw_first_cpu=- gw_first_rss1=- gw_first_peak=- gw_cpu=- gw_rss0=- gw_rss1_w=- gw_hwm=-; fi
if ! run_ngx; then ngx_first_cpu=- ngx_first_rss1=- ngx_first_peak=- ngx_cpu=- ngx_rss0=- ngx_rss1_w=- ngx_hwm=-; fi
# ms CPU per stream-second, over the streams that connected (N when all did). In the
# steady window every stream is on throughout; in the first window stream i is on
# from its start on the ramp, RAMP*i/N.
per_stream() { awk -v v="$1" -v c="$2" -v n="$n" -v t="$elapsed" 'BEGIN { if (v == "-") { print "-"; exit }; if (c + 0 > 0) n = c; printf "%.2f", v * 1000 / n / t }'; }
per_stream_first() {
	awk -v v="$1" -v c="$2" -v n="$n" -v w="$first_el" -v r="$ramp_s" 'BEGIN { if (v == "-") { print "-"; exit }
		for (i = 0; i < n; i++) { t = w - r * i / n; if (t > 0) s += t }
		if (c + 0 > 0) s *= c / n
		printf "%.2f", (s > 0 ? v * 1000 / s : 0) }'
}
cores() { awk -v c="$1" -v t="$2" 'BEGIN { if (c == "-") print "-"; else printf "%.3f", c / t }'; }
per_n() { awk -v v="$1" -v n="$n" 'BEGIN { if (v == "-") print "-"; else printf "%d", v / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }
if [ "$publisher" = ffmpeg ]; then
	pub_desc="ffmpeg -re -stream_loop -1 -c copy (one process per stream)"
	pub_cpu_label="ffmpeg CPU seconds (running ones, whole run)"
else
	pub_desc="rtmpload -batch $batch"
	pub_cpu_label="rtmpload CPU seconds (whole run)"
fi
clip_len=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$clip" 2>/dev/null | awk '{ printf "%.0f", $1 }')
{
	echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "run: N=$n publishers per server, $pub_desc, codec $codec, clip $(basename "$clip") ${clip_len}s looped (~${gw_kbps:-$ngx_kbps} kbit/s per stream), ramp $ramp, wrk -t$wrk_t -c$wrk_c -d$wrk_d"
	do_first && echo "first minute: ${first_el} s from the first publish (every stream's first $((first_s - ramp_s)) to ${first_s} s)"
	do_steady && echo "steady state: ${settle_s} to $((settle_s + window_s)) s from the first publish (${elapsed} s)"
	echo
	printf '%-46s %14s %14s %10s\n' metric rtmpgate nginx-rtmp ratio
	row() { printf '%-46s %14s %14s %10s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
	if do_first; then
		echo "first minute"
		row "  CPU seconds over the window" "$gw_first_cpu" "$ngx_first_cpu"
		row "  CPU ms per connected stream-second" "$(per_stream_first "$gw_first_cpu" "$gw_conn")" "$(per_stream_first "$ngx_first_cpu" "$ngx_conn")"
		row "  cores busy (CPU s / wall s)" "$(cores "$gw_first_cpu" "$first_el")" "$(cores "$ngx_first_cpu" "$first_el")"
		row "  RSS at window end (kB)" "$gw_first_rss1" "$ngx_first_rss1"
		row "  peak RSS sampled in the window (kB)" "$gw_first_peak" "$ngx_first_peak"
	fi
	if do_steady; then
		echo "steady state"
		row "  CPU seconds over the window" "$gw_cpu" "$ngx_cpu"
		row "  CPU ms per connected stream-second" "$(per_stream "$gw_cpu" "$gw_conn")" "$(per_stream "$ngx_cpu" "$ngx_conn")"
		row "  cores busy (CPU s / wall s)" "$(cores "$gw_cpu" "$elapsed")" "$(cores "$ngx_cpu" "$elapsed")"
		row "  RSS at window start (kB)" "$gw_rss0" "$ngx_rss0"
		row "  RSS at window end (kB)" "$gw_rss1_w" "$ngx_rss1_w"
	fi
	echo "whole run"
	row "  peak RSS, VmHWM (kB)" "$gw_hwm" "$ngx_hwm"
	row "  peak RSS per stream (kB)" "$(per_n "$gw_hwm")" "$(per_n "$ngx_hwm")"
	row "  playlists valid (of $n)" "$gw_pl_ok" "$ngx_pl_ok"
	row "  playlists advancing in 6 s (of $n)" "$gw_pl_adv" "$ngx_pl_adv"
	row "  publishers connected (of $n)" "$gw_conn" "$ngx_conn"
	row "  publishers failed / disconnected early" "$gw_fail/$gw_disc" "$ngx_fail/$ngx_disc"
	row "  $pub_cpu_label" "$gw_load_cpu" "$ngx_load_cpu"
	if [ "${WRK:-1}" != 0 ]; then
		row "  playlist GETs/s (wrk)" "$gw_pl_rps" "$ngx_pl_rps"
		row "  playlist GETs non-2xx" "$gw_pl_err" "$ngx_pl_err"
		row "  server CPU ms per 1000 playlist GETs" "$(awk -v c="$gw_pl_cpu" -v r="$gw_pl_rps" -v d="$wrk_s" 'BEGIN { if (r > 0) printf "%.1f", c * 1000 / (r * d); else print "-" }')" \
			"$(awk -v c="$ngx_pl_cpu" -v r="$ngx_pl_rps" -v d="$wrk_s" 'BEGIN { if (r > 0) printf "%.1f", c * 1000 / (r * d); else print "-" }')"
		row "  segment GETs/s (wrk)" "$gw_seg_rps" "$ngx_seg_rps"
		row "  segment MB/s (wrk)" "$gw_seg_mbs" "$ngx_seg_mbs"
		row "  segment GETs non-2xx" "$gw_seg_err" "$ngx_seg_err"
	fi
	echo
	echo "cores busy by 10 s from the first publish (samples.csv):"
	awk -F, -v hz="$hz" -v gw="$(run_gw && echo 1)" -v ngx="$(run_ngx && echo 1)" '
		NR > 1 { t[$1] = $2; g[$1] = $3; x[$1] = $5; last = $1 }
		END {
			printf "  %-10s %10s %10s %8s\n", "seconds", "rtmpgate", "nginx-rtmp", "ratio"
			for (a = 0; a + 10 <= last; a += 10) {
				b = a + 10; el = (t[b] - t[a]) / 1000
				gc = (g[b] - g[a]) / hz / el; nc = (x[b] - x[a]) / hz / el
				printf "  %-10s %10s %10s %8s\n", a "-" b, gw ? sprintf("%.3f", gc) : "-", ngx ? sprintf("%.3f", nc) : "-", (gw && ngx && nc > 0 ? sprintf("%.2f", gc / nc) : "-")
			}
		}' "$samples"
	if run_gw; then
		echo
		echo "rtmpgate store: rtmpgate_store_bytes $store ($((store / n)) per stream); /api/streams: $api_bytes bytes and $api_segs segments per stream"
		echo "rtmpgate peak RSS per stream / store bytes per stream: $(ratio "$((gw_hwm * 1024 / n))" "$((store / n))")"
		echo "rtmpgate segment availability delay (rtmpgate_segment_availability_delay_seconds): $avail"
		refused=$(grep -c '"message":"unsupported codec' "$dir/rtmpgate.log" || true)
		[ "$refused" = 0 ] || echo "rtmpgate refused a codec $refused times (\"unsupported codec\" in rtmpgate.log)"
	fi
} | tee "$dir/results.txt"

if [ "$profile" -gt 0 ] && ls "$dir"/cpu-[0-9]*.pb.gz >/dev/null 2>&1; then
	{
		for at in "${prof_ats[@]}"; do
			[ -s "$dir/cpu-$at.pb.gz" ] || continue
			echo
			echo "CPU profile (${profile}s from ${at}s after the first publish):"
			go tool pprof -top -nodecount 25 "$dir/rtmpgate" "$dir/cpu-$at.pb.gz" 2>/dev/null | sed -n '1,35p'
			echo
			echo "allocations over those ${profile}s (objects):"
			go tool pprof -top -nodecount 15 -sample_index=alloc_objects -base "$dir/allocs-$at-0.pb.gz" "$dir/rtmpgate" "$dir/allocs-$at-1.pb.gz" 2>/dev/null | sed -n '1,25p'
			echo
			echo "allocations over those ${profile}s (bytes):"
			go tool pprof -top -nodecount 15 -sample_index=alloc_space -base "$dir/allocs-$at-0.pb.gz" "$dir/rtmpgate" "$dir/allocs-$at-1.pb.gz" 2>/dev/null | sed -n '1,25p'
		done
		if [ -s "$dir/cpu-playlist.pb.gz" ]; then
			echo
			echo "CPU profile of the wrk playlist run (publishers still on):"
			go tool pprof -top -nodecount 25 "$dir/rtmpgate" "$dir/cpu-playlist.pb.gz" 2>/dev/null | sed -n '6,33p'
		fi
		if [ -s "$dir/rtmpload-rtmpgate.cpu.pb.gz" ]; then
			echo
			echo "CPU profile of rtmpload (the publishers to rtmpgate, whole run):"
			go tool pprof -top -nodecount 20 "$dir/rtmpload" "$dir/rtmpload-rtmpgate.cpu.pb.gz" 2>/dev/null | sed -n '4,28p'
		fi
		echo
		echo "heap in use at the last profile's end (bytes):"
		go tool pprof -top -nodecount 12 -sample_index=inuse_space "$dir/rtmpgate" "$dir/heap-$prof_cur.pb.gz" 2>/dev/null | sed -n '1,20p'
	} | tee -a "$dir/results.txt"
fi

status=0
for v in "$gw_fail" "$gw_disc" "$ngx_fail" "$ngx_disc"; do [ "$v" = - ] || [ "$v" = 0 ] || status=1; done
run_gw && { [ "$gw_pl_ok" = "$n" ] && [ "$gw_pl_adv" = "$n" ] || status=1; }
run_ngx && { [ "$ngx_pl_ok" = "$n" ] && [ "$ngx_pl_adv" = "$n" ] || status=1; }
exit "$status"
