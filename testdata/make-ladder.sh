#!/usr/bin/env bash
# Makes a three-rendition ladder from one source with Debian's ffmpeg (libx264):
# 1920x1080, 1280x720 and 640x360 at 30 fps from one testsrc2 through split and
# scale in a single ffmpeg run, so the three share the timeline and put their
# keyframes on the same frames (a 2 s GOP, no scene-cut keyframes, no
# B-frames), each with the same AAC stereo 48 kHz 128 kbit/s. Then
# cmd/flvladder wraps them into one Enhanced RTMP v2 multitrack FLV (what
# Debian's ffmpeg 5.1 cannot write). Video rates are capped per rendition
# (-maxrate, one-second buffer), so each runs close to its rate.
#
# Usage: testdata/make-ladder.sh OUTDIR [SECONDS] [KBPS_1080 KBPS_720 KBPS_360]
#   defaults: 10 s, 3800 1700 500 kbit/s (6 Mbit/s with the audio).
# Writes OUTDIR/r0.flv r1.flv r2.flv (one rendition each, with audio: the same
# renditions published as three single streams) and OUTDIR/ladder.flv
# (multitrack: tracks 0 1 2, r0's audio). A stamp of the arguments keeps what
# was made: the same call again makes nothing. Never commit the output
# (.gitignore has /tmp/, the default cache of the benchmarks).
set -euo pipefail
out=${1:?usage: make-ladder.sh OUTDIR [SECONDS] [KBPS_1080 KBPS_720 KBPS_360]}
secs=${2:-10}
rates=("${3:-3800}" "${4:-1700}" "${5:-500}")
cd "$(dirname "$0")/.."
mkdir -p "$out"
stamp="secs=$secs rates=${rates[*]} v1"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -s "$out/ladder.flv" ]; then
	exit 0
fi
rm -f "$out/stamp"
sizes=(1920:1080 1280:720 640:360)
# The sources end by themselves: a -t here would bound the first output only.
args=(-hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$secs"
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" -filter_complex "[0:v]split=3[v0][s1][s2];[s1]scale=${sizes[1]}[v1];[s2]scale=${sizes[2]}[v2]")
for i in 0 1 2; do
	r=${rates[$i]}
	args+=(-map "[v$i]" -map 1:a -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -profile:v high
		-g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -b:v "${r}k" -maxrate "${r}k" -bufsize "${r}k"
		-c:a aac -b:a 128k -ac 2 -f flv "$out/r$i.flv")
done
ffmpeg "${args[@]}"
go run ./cmd/flvladder -o "$out/ladder.flv" "$out/r0.flv" "$out/r1.flv" "$out/r2.flv"
echo "$stamp" >"$out/stamp"
