// Shared by index.html and play.html: attach one stream to a <video> with hls.js
// (fMP4 or TS HLS) or dash.js, and report the player's state for the page and tests.
'use strict';

function rtmpgatePlayer(video, src, engine, lowLatency, onError) {
  let destroy = () => {};
  let latency = () => null;
  let wallLatency = () => null;
  const fail = msg => onError(String(msg));
  engine = engine || (src.endsWith('.mpd') ? 'dash' : 'hls');
  if (engine === 'dash') {
    if (!window.dashjs) {
      fail('dash.js is not in this build: run make build');
    } else {
      const player = dashjs.MediaPlayer().create();
      // Low latency: the MPD's ServiceDescription sets the target; catch-up
      // speeds playback up (or down) a little to hold it after a stall.
      player.updateSettings({
        streaming: lowLatency
          ? { lowLatencyEnabled: true, liveCatchup: { enabled: true }, delay: { liveDelay: 0.8 } }
          : { lowLatencyEnabled: false },
      });
      player.on(dashjs.MediaPlayer.events.ERROR, e => fail('dash.js: ' + JSON.stringify(e.error || e)));
      player.initialize(video, src, true);
      latency = () => player.getCurrentLiveLatency();
      wallLatency = latency; // dash.js measures against the wall clock (UTCTiming)
      destroy = () => player.reset();
    }
  } else if (window.Hls && Hls.isSupported()) {
    // Low latency: blocking reloads and parts. hls.js starts on an independent
    // part (a keyframe, up to a GOP back) and speeds up only while more than 1 s
    // is buffered, so it would settle above a second; a latency past
    // liveMaxLatencyDuration makes it jump (within what it has buffered) back to
    // liveSyncDuration, PART-HOLD-BACK plus half a part; a stall adds only 50 ms
    // to that target rather than hls.js's default second.
    const hls = new Hls(lowLatency
      ? { lowLatencyMode: true, liveSyncDuration: 0.7, liveMaxLatencyDuration: 1.1, liveSyncOnStallIncrease: 0.05, maxLiveSyncPlaybackRate: 1.2 }
      : { lowLatencyMode: false });
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) fail('hls.js: ' + data.type + ' ' + data.details); });
    hls.loadSource(src);
    hls.attachMedia(video);
    latency = () => hls.latency;
    // The wall clock minus the playing frame's EXT-X-PROGRAM-DATE-TIME, which
    // rtmpgate anchors to the wall time the frame arrived: glass to glass but the encoder.
    wallLatency = () => hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null;
    destroy = () => hls.destroy();
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
    destroy = () => { video.removeAttribute('src'); video.load(); };
  } else {
    fail('hls.js is not in this build: run make build');
  }
  return {
    destroy,
    stats() {
      const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
      return {
        currentTime: video.currentTime,
        decodedFrames: q.totalVideoFrames || 0,
        droppedFrames: q.droppedVideoFrames || 0,
        width: video.videoWidth,
        height: video.videoHeight,
        paused: video.paused,
        latency: latency(),
        wallLatency: wallLatency(),
      };
    },
  };
}
