// Shared by index.html and play.html: attach one stream to a <video> with hls.js
// (fMP4 or TS HLS) or dash.js, and report the player's state for the page and tests.
'use strict';

function rtmpgatePlayer(video, src, engine, lowLatency, onError) {
  let destroy = () => {};
  let latency = () => null;
  const fail = msg => onError(String(msg));
  engine = engine || (src.endsWith('.mpd') ? 'dash' : 'hls');
  if (engine === 'dash') {
    if (!window.dashjs) {
      fail('dash.js is not in this build: run make build');
    } else {
      const player = dashjs.MediaPlayer().create();
      player.updateSettings({ streaming: { lowLatencyEnabled: lowLatency, delay: lowLatency ? { liveDelay: 1 } : {} } });
      player.on(dashjs.MediaPlayer.events.ERROR, e => fail('dash.js: ' + JSON.stringify(e.error || e)));
      player.initialize(video, src, true);
      latency = () => player.getCurrentLiveLatency();
      destroy = () => player.reset();
    }
  } else if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: lowLatency });
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) fail('hls.js: ' + data.type + ' ' + data.details); });
    hls.loadSource(src);
    hls.attachMedia(video);
    latency = () => hls.latency;
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
      };
    },
  };
}
