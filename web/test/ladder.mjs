// Plays an HLS ladder with hls.js in headless Chromium and forces a switch to
// the lowest variant and back to the highest, printing one JSON object at the
// end for the Go test to judge: the levels hls.js read, every LEVEL_SWITCHED,
// the picture height and play position after each switch, and stalls (count and
// total time, ms, from 'waiting' to 'playing').
// With MODE drop it plays in automatic mode, prints {"onHeight":H} with the
// height playing, and watches the player after the test ends that rendition's
// publisher (afterDrop), with no forced switches.
// With MODE dash it plays the ladder's MPD with dash.js (default settings)
// and forces the same two switches through setRepresentationForTypeById,
// printing the same JSON: its video Representations as levels, each
// QUALITY_CHANGE_RENDERED as a switch.
// MODE dash-drop is drop with dash.js. Switching left to the players while
// the network is throttled is abr.mjs's.
// Usage: node ladder.mjs ORIGIN MULTIVARIANT_URL|MPD_URL [drop|dash|dash-drop]
import { launchChromium } from './browser.mjs';

// playDash runs in the page: dash.js plays the MPD, then is switched to the
// lowest video Representation and back to the highest, each step judged as
// hls.js's (switched to, shown at its height, playing on).
async function playDash([src, drop]) {
  const video = document.querySelector('video');
  const player = dashjs.MediaPlayer().create();
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  const ev = dashjs.MediaPlayer.events;
  const r = { levels: [], switches: [], steps: [], errors: [], waiting: 0, stallMs: 0 };
  player.on(ev.ERROR, e => r.errors.push(String(e.error && (e.error.message || e.error.code) || e.error)));
  player.on(ev.QUALITY_CHANGE_RENDERED, e => {
    if (e.mediaType === 'video' && e.newRepresentation) r.switches.push({ id: e.newRepresentation.id, level: r.levels.findIndex(l => l.id === e.newRepresentation.id), at: +video.currentTime.toFixed(2) });
  });
  let waitingSince = 0;
  video.addEventListener('waiting', () => { r.waiting++; waitingSince = performance.now(); });
  video.addEventListener('playing', () => { if (waitingSince) r.stallMs += performance.now() - waitingSince; waitingSince = 0; });
  player.initialize(video, src, true);
  const sleep = ms => new Promise(res => setTimeout(res, ms));
  const until = async (ok, ms) => { for (let i = 0; i < ms / 100 && !ok(); i++) await sleep(100); return ok(); };
  const reps = () => { try { return player.getRepresentationsByType('video') || []; } catch (e) { return []; } };
  if (!await until(() => video.currentTime > 1 && reps().length > 0, 30000)) { r.currentTime = video.currentTime; return r; }
  r.levels = reps().map(l => ({ id: l.id, height: l.height, bitrate: l.bandwidth, url: l.id }));
  r.lowLatency = player.getLowLatencyModeEnabled ? player.getLowLatencyModeEnabled() : undefined;
  if (drop) {
    // As hls.js's drop mode: automatic quality, the Go test ends the
    // publisher of the Representation playing once told its height.
    await sleep(3000);
    const h = video.videoHeight;
    console.log('ON-HEIGHT ' + h);
    const t0 = video.currentTime;
    await until(() => video.videoHeight !== h && video.currentTime > t0 + 4, 40000);
    r.afterDrop = { from: h, advanced: +(video.currentTime - t0).toFixed(2), height: video.videoHeight, ended: video.ended };
    if (waitingSince) r.stallMs += performance.now() - waitingSince;
    r.stallMs = Math.round(r.stallMs);
    r.currentTime = video.currentTime;
    player.reset();
    return r;
  }
  player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
  const step = async (level) => {
    const before = r.switches.length;
    player.setRepresentationForTypeById('video', r.levels[level].id);
    const switched = await until(() => r.switches.slice(before).some(s => s.level === level), 30000);
    const shown = await until(() => video.videoHeight === r.levels[level].height, 20000);
    const t0 = video.currentTime;
    await sleep(3000);
    r.steps.push({ level, switched, shown, height: video.videoHeight, advanced: +(video.currentTime - t0).toFixed(2) });
  };
  const heights = r.levels.map(l => l.height);
  await step(heights.indexOf(Math.min(...heights)));
  await step(heights.indexOf(Math.max(...heights)));
  if (waitingSince) r.stallMs += performance.now() - waitingSince;
  r.stallMs = Math.round(r.stallMs);
  r.currentTime = video.currentTime;
  player.reset();
  return r;
}

const [origin, src, mode] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('pageerror', e => console.log(JSON.stringify({ pageerror: String(e) })));
  await page.goto(origin + '/healthz', { waitUntil: 'load', timeout: 15000 });
  await page.setContent('<video muted autoplay playsinline></video>');
  await page.addScriptTag({ url: origin + '/vendor/hls.min.js' });
  page.on('console', m => {
    const h = /^ON-HEIGHT (\d+)$/.exec(m.text());
    if (h) console.log(JSON.stringify({ onHeight: Number(h[1]) }));
  });
  // LADDER_DEBUG=1: the page's console (dash.js at warning level) on stderr.
  if (process.env.LADDER_DEBUG === '1') page.on('console', m => process.stderr.write(`${Date.now()} ${m.text()}\n`));
  if (mode === 'dash' || mode === 'dash-drop') {
    await page.addScriptTag({ url: origin + '/vendor/dash.all.min.js' });
  }
  const out = (mode || '').startsWith('dash') ? await page.evaluate(playDash, [src, mode === 'dash-drop']) : await page.evaluate(async ([src, drop]) => {
    const video = document.querySelector('video');
    const hls = new Hls({ capLevelToPlayerSize: false });
    const r = { levels: [], switches: [], steps: [], errors: [], waiting: 0 };
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
      r.levels = d.levels.map(l => ({ height: l.height, bitrate: l.bitrate, url: l.url[0] || l.url }));
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => r.switches.push({ level: d.level, at: +video.currentTime.toFixed(2) }));
    hls.on(Hls.Events.ERROR, (_, d) => r.errors.push(d.details + (d.fatal ? ' (fatal)' : '')));
    // Stalls: each 'waiting' until the next 'playing', summed in ms.
    let waitingSince = 0;
    r.stallMs = 0;
    video.addEventListener('waiting', () => { r.waiting++; waitingSince = performance.now(); });
    video.addEventListener('playing', () => { if (waitingSince) r.stallMs += performance.now() - waitingSince; waitingSince = 0; });
    hls.loadSource(src);
    hls.attachMedia(video);
    const sleep = ms => new Promise(res => setTimeout(res, ms));
    const until = async (ok, ms) => { for (let i = 0; i < ms / 100 && !ok(); i++) await sleep(100); return ok(); };
    if (!await until(() => video.currentTime > 1 && r.levels.length > 0, 30000)) return r;
    // Step to a level: switch, wait for it to be switched to and for the
    // picture to be of its height, then let it play on.
    const step = async (level) => {
      const before = r.switches.length;
      hls.nextLevel = level;
      const switched = await until(() => r.switches.slice(before).some(s => s.level === level), 30000);
      const shown = await until(() => video.videoHeight === r.levels[level].height, 20000);
      const t0 = video.currentTime;
      await sleep(3000);
      r.steps.push({ level, switched, shown, height: video.videoHeight, advanced: +(video.currentTime - t0).toFixed(2) });
    };
    const heights = r.levels.map(l => l.height);
    const low = heights.indexOf(Math.min(...heights)), high = heights.indexOf(Math.max(...heights));
    if (drop) {
      // In automatic mode, the Go test ends the publisher of the rendition
      // playing once told its height: does the player move to another
      // rendition and play on?
      await sleep(3000);
      const h = video.videoHeight;
      console.log('ON-HEIGHT ' + h);
      const t0 = video.currentTime;
      await until(() => video.videoHeight !== h && video.currentTime > t0 + 4, 40000);
      r.afterDrop = { from: h, advanced: +(video.currentTime - t0).toFixed(2), height: video.videoHeight, ended: video.ended };
      r.currentTime = video.currentTime;
      hls.destroy();
      return r;
    }
    await step(low);
    await step(high);
    if (waitingSince) r.stallMs += performance.now() - waitingSince;
    r.stallMs = Math.round(r.stallMs);
    r.currentTime = video.currentTime;
    hls.destroy();
    return r;
  }, [src, mode === 'drop']);
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
