#!/usr/bin/env bash
# Makes the test clips with ffmpeg's lavfi sources: 640x360 at 30 fps, a 2 s GOP
# (keyframe every 60 frames, no scene-cut keyframes), AAC stereo 48 kHz.
# Usage: testdata/make-clips.sh OUTDIR [SECONDS]
set -euo pipefail
out=${1:?usage: make-clips.sh OUTDIR [SECONDS]}
secs=${2:-8}
mkdir -p "$out"
video=(-f lavfi -i "testsrc2=size=640x360:rate=30")
audio=(-f lavfi -i "sine=frequency=440:sample_rate=48000")
x264=(-c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 -b:v 1M)
aac=(-c:a aac -b:a 128k -ac 2)
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# H.264 (no B-frames) + AAC
ff "${video[@]}" "${audio[@]}" -t "$secs" "${x264[@]}" -bf 0 -profile:v main "${aac[@]}" -f flv "$out/av.flv"
# H.264 with B-frames (zerolatency disables them, so re-enable) + AAC
ff "${video[@]}" "${audio[@]}" -t "$secs" "${x264[@]}" -bf 2 -x264-params bframes=2:b-adapt=0 -profile:v high "${aac[@]}" -f flv "$out/bframes.flv"
# audio only
ff "${audio[@]}" -t "$secs" "${aac[@]}" -f flv "$out/audio.flv"
# video only
ff "${video[@]}" -t "$secs" "${x264[@]}" -bf 0 -profile:v main -f flv "$out/video.flv"
