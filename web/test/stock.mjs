// Plays live streams in stock players, each embedded as a site would embed it
// plainly (no code of rtmpgate's page), several pages of one headless Chromium at
// once, and prints one JSON line per page and second for the Go tests to judge.
// Usage: node stock.mjs ORIGIN SECONDS CASES_JSON
// CASES_JSON is an array of {name, engine: "hls"|"dash"|"shaka", mode:
// "default"|"lowLatency", src, settings}; src is a path on ORIGIN or a full URL;
// settings, when given, is the one configuration object the player gets instead
// (hls.js config, dash.js updateSettings, Shaka configure), for experiments.
//
// The configurations are the players' documented ones, nothing more:
//   hls.js   default: new Hls()              lowLatency: new Hls({lowLatencyMode: true})
//   dash.js  default: MediaPlayer().create() lowLatency: streaming.liveCatchup.enabled
//            (dash.js 4.4+ switches to low latency by itself when the MPD has
//            availabilityTimeComplete="false"; its target comes from ServiceDescription)
//   Shaka    default: new shaka.Player()     lowLatency: streaming.lowLatencyMode
//
// Each line: {name, t, currentTime, decodedFrames, width, height, latency (s behind
// the live edge as the player sees it), wallLatency (wall clock minus the playing
// frame's wall-clock time: EXT-X-PROGRAM-DATE-TIME or the MPD's availability
// timeline, which rtmpgate anchors to the frame's arrival), target (the latency
// hls.js or dash.js aims at), stalls (times playback
// stopped advancing for 250 ms or more while not paused, after it first advanced),
// stalledMs (their total), longestStallMs, errors, buffered (the media element's
// buffered ranges), notes (hls.js's last non-fatal errors, flushes and loads)}.
import { launchChromium } from './browser.mjs';

const [origin, secondsArg, casesArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const cases = JSON.parse(casesArg || '[]');
const vendor = {
  hls: '/vendor/hls.min.js',
  dash: '/vendor/dash.all.min.js',
  shaka: '/vendor/shaka-player.compiled.js',
};

// embed is the one script a page runs: it makes the player and keeps playerStats.
function embed(engine, mode, src, settings) {
  const ll = mode === 'lowLatency';
  const set = settings ? JSON.stringify(settings) : null;
  const start = {
    hls: `const hls = new Hls(${set || (ll ? '{ lowLatencyMode: true }' : '')});
      hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) fail('hls.js ' + d.type + ' ' + d.details); else note('error ' + d.details); });
      hls.on(Hls.Events.BUFFER_FLUSHING, (_, d) => note('flush ' + d.type + ' ' + d.startOffset.toFixed(2) + '-' + d.endOffset.toFixed(2)));
      hls.on(Hls.Events.FRAG_LOADED, (_, d) => note('loaded ' + d.frag.type + ' ' + d.frag.sn + (d.part ? '.' + d.part.index : '')));
      hls.loadSource(SRC); hls.attachMedia(video);
      latency = () => hls.latency;
      target = () => hls.targetLatency;
      playingDate = () => hls.playingDate;`,
    dash: `const player = dashjs.MediaPlayer().create();
      ${set ? `player.updateSettings(${set});` : ll ? 'player.updateSettings({ streaming: { liveCatchup: { enabled: true } } });' : ''}
      player.on(dashjs.MediaPlayer.events.ERROR, e => fail('dash.js ' + JSON.stringify(e.error ? { code: e.error.code, message: e.error.message } : e).slice(0, 300)));
      player.initialize(video, SRC, true);
      latency = () => player.getCurrentLiveLatency();
      target = () => player.getTargetLiveDelay();
      wall = () => player.getCurrentLiveLatency();`,
    shaka: `shaka.polyfill.installAll();
      const player = new shaka.Player();
      ${set ? `player.configure(${set});` : ll ? 'player.configure({ streaming: { lowLatencyMode: true } });' : ''}
      player.addEventListener('error', e => fail('shaka ' + e.detail.code + ' ' + JSON.stringify(e.detail.data).slice(0, 300)));
      player.attach(video).then(() => player.load(SRC)).catch(e => fail('shaka load ' + (e.code || e)));
      latency = () => { const r = player.seekRange(); return r.end - video.currentTime; };
      playingDate = () => player.getPlayheadTimeAsDate();`,
  }[engine];
  return `<!doctype html><meta charset="utf-8"><title>${engine} ${mode}</title>
<video id="video" muted autoplay playsinline></video>
<script src="${vendor[engine]}"></script>
<script>
'use strict';
const SRC = ${JSON.stringify(src)};
const video = document.getElementById('video');
const errors = [];
const fail = m => errors.push(String(m));
// The player's last events, for the test's log when a case fails.
const notes = [];
const note = m => { notes.push(video.currentTime.toFixed(2) + '@' + (performance.now() / 1000).toFixed(2) + ' ' + m); if (notes.length > 60) notes.shift(); };
const ranges = r => Array.from({ length: r.length }, (_, i) => r.start(i).toFixed(2) + '-' + r.end(i).toFixed(2)).join(' ');
let latency = () => null, target = () => null, playingDate = () => null, wall = null;
let stalls = 0, stalledMs = 0, longestStallMs = 0, lastCT = -1, since = 0, started = false;
// Every 50 ms: playback that does not advance for 250 ms, not paused, is a stall.
setInterval(() => {
  const now = performance.now();
  if (video.currentTime !== lastCT || video.paused) {
    if (started && since && now - since >= 250) {
      stalls++; stalledMs += now - since; longestStallMs = Math.max(longestStallMs, now - since);
    }
    if (lastCT >= 0 && video.currentTime > lastCT && !video.paused) started = true;
    lastCT = video.currentTime; since = now;
  }
}, 50);
video.addEventListener('error', () => fail('video element: ' + (video.error && video.error.message)));
try {
  ${start}
} catch (e) { fail('setup: ' + e); }
window.playerStats = () => {
  const q = video.getVideoPlaybackQuality();
  const now = performance.now();
  const open = started && since && now - since >= 250 && !video.paused ? now - since : 0;
  let wl = null;
  if (wall) wl = wall(); else { const d = playingDate(); if (d) wl = (Date.now() - d.getTime()) / 1000; }
  const lat = latency(), tl = target();
  return { currentTime: video.currentTime, decodedFrames: q.totalVideoFrames, width: video.videoWidth,
    height: video.videoHeight, paused: video.paused,
    latency: Number.isFinite(lat) ? lat : null, target: Number.isFinite(tl) ? tl : null, wallLatency: Number.isFinite(wl) ? wl : null,
    stalls: stalls + (open ? 1 : 0), stalledMs: Math.round(stalledMs + open),
    longestStallMs: Math.round(Math.max(longestStallMs, open)), errors,
    buffered: ranges(video.buffered), notes: notes.slice(-20) };
};
</script>`;
}

const browser = await launchChromium({ background: true });
try {
  const pages = await Promise.all(cases.map(async (c, i) => {
    // A context per page, as a viewer has a browser of their own: pages of one
    // context share its six connections per host, and two LL-HLS players'
    // blocking playlist reloads and preload-hinted parts outnumber them.
    const context = await browser.newContext({ viewport: { width: 640, height: 400 } });
    const page = await context.newPage();
    page.on('pageerror', e => console.log(JSON.stringify({ name: c.name, pageerror: String(e) })));
    // The page is served from the origin's own address, so its requests are same-origin.
    const url = `${origin}/__stock/${i}.html`;
    await page.route(url, r => r.fulfill({ contentType: 'text/html', body: embed(c.engine, c.mode, c.src, c.settings) }));
    await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    return { c, page };
  }));
  const t0 = Date.now();
  for (let i = 1; i <= seconds; i++) {
    await new Promise(r => setTimeout(r, Math.max(0, t0 + i * 1000 - Date.now())));
    const lines = await Promise.all(pages.map(async ({ c, page }) => {
      const s = await page.evaluate(() => window.playerStats ? window.playerStats() : null).catch(e => ({ errors: ['evaluate: ' + e] }));
      return JSON.stringify({ name: c.name, t: i, wall: (Date.now() - t0) / 1000, ...s });
    }));
    for (const l of lines) console.log(l);
  }
} finally {
  await browser.close();
}
