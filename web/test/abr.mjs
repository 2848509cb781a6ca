// Lets stock players choose the rendition of a live ladder while the network
// changes under them: each case plays its source in a page of its own (one
// headless Chromium, PARALLEL cases at once), and once it has played the top
// rendition a while the script throttles that page's network through the
// Chrome DevTools Protocol (Network.emulateNetworkConditions) until the
// picture's height falls, then lifts the throttle until it rises again, and
// plays on for a few seconds.
// It prints one JSON line per case:
//   {name, lowLatency (what the player says it runs in), heights: [{height, at}]
//    (every change of the displayed picture's height, s since the page
//    loaded), throttledAt, downAt, liftedAt, upAt (s since the page loaded; 0
//    when it did not happen), switches (the player's own switch events),
//    stallList [{at, ms}] ('waiting' to 'playing'), freezeList (currentTime still for
//    250 ms or more, not paused, once playing), advancedAfterUp (s of media played in the PLAYON s after the
//    up-switch), estimates (the player's bandwidth estimate each second,
//    kbit/s), fatal (errors the player gave up on), errors (those it
//    recovered from), pageerror}.
// Usage: node abr.mjs KBPS CASES_JSON [GOOD_KBPS]
// GOOD_KBPS is the network before the throttle and after the lift (none
// emulated when 0 or absent). Loopback without emulation delivers a chunk of
// a segment being produced in under a millisecond, which dash.js's
// low-latency estimate (moof to mdat time per chunk) cannot measure: it then
// sees only the rate the chunks are produced at, as on no real network.
// CASES_JSON is an array of {name, engine: "hls"|"dash", mode:
// "classic"|"lowLatency", src (the URL of a multivariant playlist or MPD; the
// page is served from its origin)}. The players run at their
// defaults, except what makes the mode:
//   hls.js   classic: new Hls({lowLatencyMode: false})  lowLatency: new Hls({lowLatencyMode: true})
//   dash.js  both: MediaPlayer().create(); dash.js runs low latency by itself
//            when the MPD says so (availabilityTimeComplete="false"), so the
//            mode is the MPD's (rtmpgate's low_latency setting)
// From the environment: SETTLE (4), TOP (20), STEADY (4), DOWN_WITHIN (30),
// UP_WITHIN (40) and PLAYON (4) seconds, TOP_HEIGHT (the top rendition's height: the
// throttle waits up to TOP s for it after SETTLE) and PARALLEL (cases at a
// time; all when 0).
import { launchChromium } from './browser.mjs';

const [kbpsArg, casesArg, goodArg] = process.argv.slice(2);
const kbps = Number(kbpsArg), good = Number(goodArg || 0);
const cases = JSON.parse(casesArg || '[]');
const env = (k, d) => Number(process.env[k] || d) * 1000;
const top = Number(process.env.TOP_HEIGHT || 0), topWithin = env('TOP', 20), parallel = Number(process.env.PARALLEL || 0);
const settle = env('SETTLE', 4), steady = env('STEADY', 4), downWithin = env('DOWN_WITHIN', 30), upWithin = env('UP_WITHIN', 40), playOn = env('PLAYON', 4);
const vendor = { hls: '/vendor/hls.min.js', dash: '/vendor/dash.all.min.js' };

// embed is the page of one case: the player, and window.abr, what it saw.
function embed(c) {
  const ll = c.mode === 'lowLatency';
  const start = {
    hls: `const hls = new Hls({ lowLatencyMode: ${ll} });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => r.switches.push({ level: d.level, height: hls.levels[d.level] && hls.levels[d.level].height, at: at() }));
      hls.on(Hls.Events.ERROR, (_, d) => (d.fatal ? r.fatal : r.errors).push(d.details + ' at ' + at()));
      hls.loadSource(SRC); hls.attachMedia(video);
      lowLatency = () => hls.lowLatencyMode && !!(hls.levels[hls.currentLevel] && hls.levels[hls.currentLevel].details && hls.levels[hls.currentLevel].details.partList);
      estimate = () => hls.bandwidthEstimate / 1000;`,
    dash: `const player = dashjs.MediaPlayer().create();
      const ev = dashjs.MediaPlayer.events;
      player.on(ev.QUALITY_CHANGE_RENDERED, e => { if (e.mediaType === 'video' && e.newRepresentation) r.switches.push({ id: e.newRepresentation.id, height: e.newRepresentation.height, at: at() }); });
      player.on(ev.ERROR, e => r.fatal.push(String(e.error && (e.error.message || e.error.code) || e.error) + ' at ' + at()));
      player.initialize(video, SRC, true);
      lowLatency = () => player.getLowLatencyModeEnabled();
      estimate = () => player.getAverageThroughput('video');`,
  }[c.engine];
  return `<!doctype html><meta charset="utf-8"><title>${c.name}</title>
<video id="video" muted autoplay playsinline width="640" height="360"></video>
<script src="${vendor[c.engine]}"></script>
<script>
'use strict';
const SRC = ${JSON.stringify(c.src)};
const video = document.getElementById('video');
const t0 = performance.now();
const at = () => +((performance.now() - t0) / 1000).toFixed(2);
const r = { heights: [], estimates: [], switches: [], fatal: [], errors: [], stallList: [], freezeList: [] };
let lowLatency = () => null, estimate = () => null;
let waitingSince = 0, lastCT = -1, since = 0, started = false, lastH = 0;
const endStall = () => { const d = performance.now() - waitingSince; r.stallList.push({ at: +((waitingSince - t0) / 1000).toFixed(2), ms: Math.round(d) }); waitingSince = 0; };
const endFreeze = (now) => { const d = now - since; r.freezeList.push({ at: +((since - t0) / 1000).toFixed(2), ms: Math.round(d) }); };
video.addEventListener('waiting', () => { if (!waitingSince) waitingSince = performance.now(); });
video.addEventListener('playing', () => { if (waitingSince) endStall(); });
video.addEventListener('error', () => r.fatal.push('video element: ' + (video.error && video.error.message)));
// Every 50 ms: the picture's height, and playback not advancing for 250 ms
// while not paused (a freeze, whether or not the element said 'waiting').
setInterval(() => {
  const now = performance.now();
  if (video.videoHeight !== lastH) { lastH = video.videoHeight; r.heights.push({ height: lastH, at: at() }); }
  if (video.currentTime !== lastCT || video.paused) {
    if (started && since && now - since >= 250) endFreeze(now);
    if (lastCT >= 0 && video.currentTime > lastCT && !video.paused) started = true;
    lastCT = video.currentTime; since = now;
  }
}, 50);
// Every second: the player's bandwidth estimate, kbit/s.
setInterval(() => { let e = null; try { e = Math.round(estimate()); } catch (x) { /* none yet */ } r.estimates.push(e); }, 1000);
try {
  ${start}
} catch (e) { r.fatal.push('setup: ' + e); }
window.abr = {
  at, height: () => video.videoHeight, currentTime: () => video.currentTime,
  result: () => {
    if (waitingSince) endStall();
    const now = performance.now();
    if (started && since && now - since >= 250) { endFreeze(now); since = now; }
    let ll = null; try { ll = lowLatency(); } catch (e) { /* not known */ }
    return { ...r, lowLatency: ll, currentTime: video.currentTime };
  },
};
</script>`;
}

const sleep = ms => new Promise(res => setTimeout(res, ms));

// run plays one case through its throttle and lift.
async function run(browser, c, i) {
  const out = { name: c.name, throttledAt: 0, downAt: 0, liftedAt: 0, upAt: 0, advancedAfterUp: 0 };
  // A context per case: pages of one context share its six connections per
  // host, and LL-HLS players' blocking requests outnumber them.
  const context = await browser.newContext({ viewport: { width: 640, height: 400 } });
  try {
    const page = await context.newPage();
    page.on('pageerror', e => { out.pageerror = String(e); });
    if (process.env.ABR_DEBUG === '1') page.on('console', m => process.stderr.write(`${c.name} ${Date.now()} ${m.text()}\n`));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const net = k => cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: k > 0 ? k * 125 : -1, uploadThroughput: -1 });
    await net(good);
    const url = `${new URL(c.src).origin}/__abr/${i}.html`;
    await page.route(url, r => r.fulfill({ contentType: 'text/html', body: embed(c) }));
    await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    const ev = f => page.evaluate(f);
    const until = async (ok, ms) => { const end = Date.now() + ms; while (Date.now() < end) { if (await ok()) return true; await sleep(100); } return false; };
    if (!await until(async () => await ev(() => window.abr.currentTime()) > 1, 30000)) {
      return { ...out, ...await ev(() => window.abr.result()), notStarted: true };
    }
    // SETTLE s of playing, on until the top rendition shows (TOP more at
    // most), so that a fall is the throttle's doing, and STEADY s more at it,
    // so that the player has its buffer back after that switch.
    await sleep(settle);
    await until(async () => await ev(() => window.abr.height()) >= top, topWithin);
    await sleep(steady);
    const h0 = await ev(() => window.abr.height());
    out.throttledAt = await ev(() => window.abr.at());
    await net(kbps);
    let low = h0;
    if (await until(async () => { low = await ev(() => window.abr.height()); return low > 0 && low < h0; }, downWithin)) {
      out.downAt = await ev(() => window.abr.at());
    }
    out.liftedAt = await ev(() => window.abr.at());
    await net(good);
    // Up: any rise above the lowest height since the throttle (a player may
    // go on down after the lift before it climbs).
    if (await until(async () => { const h = await ev(() => window.abr.height()); if (h > 0 && h < low) low = h; return h > low; }, upWithin)) {
      out.upAt = await ev(() => window.abr.at());
      const ct = await ev(() => window.abr.currentTime());
      await sleep(playOn);
      out.advancedAfterUp = +(await ev(() => window.abr.currentTime()) - ct).toFixed(2);
    }
    return { ...out, ...await ev(() => window.abr.result()) };
  } catch (e) {
    return { ...out, pageerror: out.pageerror || String(e) };
  } finally {
    await context.close();
  }
}

const browser = await launchChromium({ background: true });
try {
  // PARALLEL cases at a time (all when 0).
  const n = parallel > 0 ? parallel : cases.length;
  for (let b = 0; b < cases.length; b += n) {
    await Promise.all(cases.slice(b, b + n).map(async (c, i) => console.log(JSON.stringify(await run(browser, c, b + i)))));
  }
} finally {
  await browser.close();
}
