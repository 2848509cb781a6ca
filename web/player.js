// Shared by index.html and play.html: attach one stream to a <video> with hls.js
// (fMP4 or TS HLS), dash.js or Shaka Player (play.html only), and report the
// player's state for the page and tests.
'use strict';

// How far behind the live edge the low-latency hls.js player aims, s: PART-HOLD-BACK
// (three 200 ms parts) plus most of a part for the one in flight.
const LL_TARGET = 0.75;

function rtmpgatePlayer(video, src, engine, lowLatency, onError) {
  let destroy = () => {};
  let latency = () => null;
  let wallLatency = () => null;
  const bufferAhead = () => {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime < b.end(i)) return b.end(i) - video.currentTime;
    }
    return 0;
  };
  let engineObj = null;
  // The video renditions the engine knows ({height, bitrate}), the one it plays
  // (-1 while it chooses itself) and a way to pick one or go back to automatic.
  let renditions = () => [];
  let chosen = () => -1;
  let choose = () => {};
  // How often playback ran dry or jumped: the figures low-latency tuning is judged by.
  let waiting = 0, seeks = 0;
  video.addEventListener('waiting', () => { waiting++; });
  video.addEventListener('seeking', () => { seeks++; });
  const fail = msg => onError(String(msg));
  engine = engine || (src.endsWith('.mpd') ? 'dash' : 'hls');
  const debug = /[?&]debug=1(&|$)/.test(location.search); // the engines' own logs, to the console
  if (engine === 'dash') {
    if (!window.dashjs) {
      fail('dash.js is not in this build: run make build');
    } else {
      const player = dashjs.MediaPlayer().create();
      // dash.js (4.4 on) plays in low-latency mode by itself when the MPD says
      // availabilityTimeComplete="false", as rtmpgate's does, aiming at its
      // ServiceDescription's target. The page's low-latency mode adds the
      // catch-up that speeds playback up (or down) a little to hold it after a
      // stall, and sets that target itself.
      player.updateSettings({
        debug: { logLevel: debug ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING },
        streaming: lowLatency ? { liveCatchup: { enabled: true }, delay: { liveDelay: 0.8 } } : {},
      });
      player.on(dashjs.MediaPlayer.events.ERROR, e => fail('dash.js: ' + JSON.stringify(e.error || e)));
      player.initialize(video, src, true);
      latency = () => player.getCurrentLiveLatency();
      wallLatency = latency; // dash.js measures against the wall clock (UTCTiming)
      destroy = () => player.reset();
      engineObj = player;
      const reps = () => (player.getRepresentationsByType ? player.getRepresentationsByType('video') : null) || [];
      let pick = -1;
      renditions = () => reps().map(r => ({ height: r.height, bitrate: r.bandwidth }));
      chosen = () => pick;
      choose = i => {
        const r = reps()[i];
        pick = r ? i : -1;
        player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: !r } } } });
        if (r) player.setRepresentationForTypeById('video', r.id, true);
      };
    }
  } else if (engine === 'shaka') {
    if (!window.shaka) {
      fail('Shaka Player is not in this build: run make build');
    } else {
      // Shaka Player with its defaults (its low-latency mode is one of them:
      // LL-HLS parts, the MPD's ServiceDescription), except on HLS: Shaka
      // 5.2.12 drops video up to the next keyframe after a part whose
      // recomputed timestamp offset reads 1 ms off (shaka-player#10589, see
      // docs/PLAYBACK.md), so it plays whole segments there.
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      if (/\.m3u8(\?|$)/.test(src)) player.configure('streaming.lowLatencyMode', false);
      player.addEventListener('error', e => fail('Shaka: ' + e.detail.code));
      player.attach(video).then(() => player.load(src)).catch(e => fail('Shaka: ' + (e.code || e)));
      latency = () => { const r = player.seekRange(); return r.end - video.currentTime; };
      wallLatency = () => { const d = player.getPlayheadTimeAsDate(); return d ? (Date.now() - d.getTime()) / 1000 : null; };
      destroy = () => { player.destroy(); };
      engineObj = player;
      // One entry per height and bitrate: Shaka's variants pair each video with each audio.
      const variants = () => {
        const seen = new Map();
        for (const v of player.getVariantTracks()) {
          const k = v.height + '/' + v.videoBandwidth;
          if (!seen.has(k)) seen.set(k, v);
        }
        return [...seen.values()];
      };
      let pick = -1;
      renditions = () => variants().map(v => ({ height: v.height, bitrate: v.videoBandwidth || v.bandwidth }));
      chosen = () => pick;
      choose = i => {
        const v = variants()[i];
        pick = v ? i : -1;
        player.configure('abr.enabled', !v);
        if (v) player.selectVariantTrack(v, true);
      };
    }
  } else if (window.Hls && Hls.isSupported()) {
    // Low latency: blocking reloads and parts, aiming LL_TARGET behind the
    // playlist's live edge. hls.js's own catch-up speeds up only while more
    // than 1 s is buffered, which a sub-second target never has, so it is off
    // (maxLiveSyncPlaybackRate 1) and catchUp below plays 5 to 15 % faster
    // while behind; hls.js only jumps forward when far behind (past
    // liveMaxLatencyDuration), a seek that would land on a thin buffer
    // otherwise. liveDurationInfinity: updating the MediaSource duration at
    // every part holds up both SourceBuffers' appends. Each stall backs the
    // target off by 0.1 s; 30 s without one restores it.
    const hls = new Hls(lowLatency
      ? { debug, lowLatencyMode: true, liveSyncDuration: LL_TARGET, liveMaxLatencyDuration: 2,
        liveSyncOnStallIncrease: 0.1, maxLiveSyncPlaybackRate: 1, liveDurationInfinity: true }
      : { debug, lowLatencyMode: false });
    if (lowLatency) {
      let lastStall = 0, playing = false, drySince = 0;
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) lastStall = Date.now();
      });
      video.addEventListener('playing', () => { playing = true; });
      // hls.js 1.7.4 can stop loading media at a segment boundary (the playlist
      // that completes a segment and lists its short last part arrives while the
      // part before is still in flight) until its latency passes
      // liveMaxLatencyDuration and it jumps: seconds of frozen picture. Run dry
      // for half a second with the playlist listing what comes next, the page
      // makes that jump at once; the seek restarts hls.js's loading there.
      const unstick = () => {
        const d = hls.latestLevelDetails;
        if (!d || !d.live || !playing || video.paused || video.seeking || bufferAhead() > 0.05) { drySince = 0; return; }
        const now = Date.now();
        if (!drySince) drySince = now;
        if (now - drySince >= 500 && d.edge - video.currentTime > 0.4) {
          drySince = 0;
          video.currentTime = Math.max(hls.liveSyncPosition || 0, video.currentTime + 0.1);
        }
      };
      const catchUp = () => {
        unstick();
        if (lastStall && Date.now() - lastStall > 30000) {
          hls.targetLatency = LL_TARGET; // forgets the stalls' back-off
          lastStall = 0;
        }
        const d = hls.latestLevelDetails;
        const behind = hls.latency - (hls.targetLatency || LL_TARGET);
        let rate = 1;
        // Further behind than a target duration is the viewer rewinding (as
        // hls.js judges it): left alone, as is a stream that ended.
        if (d && d.live && !video.paused && hls.latency > 0 && bufferAhead() > 0.5 &&
          behind > (video.playbackRate > 1 ? 0 : 0.1) && behind < d.targetduration) {
          rate = Math.min(1.15, Math.round((1 + behind / 2) * 20) / 20);
        }
        if (video.playbackRate !== rate) video.playbackRate = rate;
      };
      const timer = setInterval(catchUp, 250);
      destroy = () => { clearInterval(timer); hls.destroy(); };
    } else {
      destroy = () => hls.destroy();
    }
    // The status and URL say which request failed and how (a 400 to a blocking
    // reload, a 404, a timeout): the test logs keep nothing else of it.
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      const code = data.response && data.response.code ? ' HTTP ' + data.response.code : '';
      const url = data.url || (data.context && data.context.url) || '';
      fail('hls.js: ' + data.type + ' ' + data.details + code + (url ? ' ' + url : ''));
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    latency = () => hls.latency;
    renditions = () => (hls.levels || []).map(l => ({ height: l.height, bitrate: l.bitrate }));
    chosen = () => (hls.autoLevelEnabled ? -1 : hls.currentLevel);
    choose = i => { hls.currentLevel = i >= 0 && i < hls.levels.length ? i : -1; };
    // The wall clock minus the playing frame's EXT-X-PROGRAM-DATE-TIME, which
    // rtmpgate anchors to the wall time the frame arrived: glass to glass but the encoder.
    wallLatency = () => hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null;
    engineObj = hls;
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
    destroy = () => { video.removeAttribute('src'); video.load(); };
  } else {
    fail('hls.js is not in this build: run make build');
  }
  return {
    destroy,
    engine: () => engineObj,
    renditions: () => renditions(),
    chosen: () => chosen(),
    choose: i => choose(i),
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
        bufferAhead: bufferAhead(),
        playbackRate: video.playbackRate,
        waiting,
        seeks,
      };
    },
  };
}

// renditionPicker keeps a <select> in step with a player's video renditions:
// "auto" and one entry per rendition, highest first, hidden while there is only
// one. It returns a function that stops it.
function renditionPicker(select, getPlayer) {
  let shown = '';
  const refresh = () => {
    const p = getPlayer();
    const list = p ? p.renditions().map((r, i) => ({ i, r })).sort((a, b) => (b.r.bitrate || 0) - (a.r.bitrate || 0)) : [];
    const key = JSON.stringify(list) + '|' + (p ? p.chosen() : -1);
    if (key === shown) return;
    shown = key;
    (select.closest('label') || select).hidden = list.length < 2;
    select.replaceChildren(new Option('auto', '-1'));
    for (const { i, r } of list) {
      const kbit = r.bitrate ? ' ' + Math.round(r.bitrate / 1000) + ' kbit/s' : '';
      select.append(new Option((r.height ? r.height + 'p' : 'rendition ' + i) + kbit, String(i)));
    }
    select.value = String(p ? p.chosen() : -1);
  };
  select.addEventListener('change', () => {
    const p = getPlayer();
    if (p) p.choose(Number(select.value));
    shown = '';
  });
  const timer = setInterval(refresh, 1000);
  refresh();
  return () => clearInterval(timer);
}
