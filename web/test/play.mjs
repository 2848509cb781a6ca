// Plays one stream in headless Chromium and prints one JSON line per second with the
// player's state, for the Go tests to judge.
// Usage: node play.mjs PAGE_URL SECONDS [SCREENSHOT.png]
// With PLAY_TRACE=1 each line also has a "trace": the player engine's own view
// (target latency, buffer per engine), its events that second (stalls, seeks,
// rate changes) and every HTTP request that finished that second with its
// timing (start, first byte, end, in ms of page time, and bytes), from the
// browser's Resource Timing: what low-latency tuning is judged by.
import { launchChromium } from './browser.mjs';

const [pageURL, secondsArg, screenshot] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);
const trace = process.env.PLAY_TRACE === '1';
const browser = await launchChromium();

// Runs in the page before its scripts: keeps every request's timing (the default
// buffer holds 250) and hooks the engine once play.html has made it.
function installTrace() {
  performance.setResourceTimingBufferSize(1000000);
  const events = [];
  let taken = 0;
  const push = (name, extra) => events.push({ at: Math.round(performance.now()), ev: name, ...extra });
  const hook = () => {
    const p = window.rtmpgateTracePlayer && window.rtmpgateTracePlayer();
    const e = p && p.engine();
    if (!e) { if (hook.tries = (hook.tries || 0) + 1, hook.tries < 500) setTimeout(hook, 20); return; }
    if (window.Hls && e instanceof window.Hls) {
      e.on(Hls.Events.ERROR, (_, d) => push('error', { details: d.details, fatal: d.fatal }));
      e.on(Hls.Events.LEVEL_UPDATED, (_, d) => push('level', { edge: +d.details.edge.toFixed(3), parts: d.details.partList ? d.details.partList.length : 0 }));
    } else if (window.dashjs) {
      const ev = dashjs.MediaPlayer.events;
      for (const k of ['PLAYBACK_WAITING', 'PLAYBACK_STALLED', 'PLAYBACK_SEEKING', 'PLAYBACK_RATE_CHANGED', 'BUFFER_EMPTY', 'MANIFEST_LOADED']) {
        if (ev[k]) e.on(ev[k], d => push(k, k === 'PLAYBACK_RATE_CHANGED' ? { rate: d.playbackRate } : k === 'PLAYBACK_SEEKING' ? { to: d.seekTime } : {}));
      }
    }
  };
  const video = () => document.querySelector('video');
  for (const k of ['waiting', 'seeking', 'stalled', 'ratechange']) {
    document.addEventListener(k, () => push('video.' + k, { ct: +(video().currentTime.toFixed(3)), rate: video().playbackRate }), true);
  }
  document.addEventListener('DOMContentLoaded', hook);
  window.rtmpgateTrace = () => {
    const out = { now: Math.round(performance.now()), events: events.splice(0) };
    const p = window.rtmpgateTracePlayer && window.rtmpgateTracePlayer();
    const e = p && p.engine();
    if (e && window.Hls && e instanceof window.Hls) {
      out.target = e.targetLatency; out.maxLatency = e.maxLatency; out.drift = e.drift;
      const d = e.latestLevelDetails;
      if (d) { out.edge = +d.edge.toFixed(3); out.age = +d.age.toFixed(3); }
    } else if (e && e.getTargetLiveDelay) {
      out.target = e.getTargetLiveDelay();
      out.bufV = e.getBufferLength('video'); out.bufA = e.getBufferLength('audio');
    }
    const rs = performance.getEntriesByType('resource');
    out.req = rs.slice(taken).map(r => {
      const u = new URL(r.name);
      return [u.pathname.split('/').slice(-2).join('/') + (u.search || ''), Math.round(r.startTime),
        Math.round(r.responseStart - r.startTime), Math.round(r.responseEnd - r.startTime), r.transferSize, r.encodedBodySize];
    });
    taken = rs.length;
    return out;
  };
}

try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.on('pageerror', e => console.log(JSON.stringify({ pageerror: String(e) })));
  if (trace) await page.addInitScript(installTrace);
  // With play.html?debug=1 the engines log; PLAY_TRACE keeps those lines, on stderr.
  if (trace) page.on('console', m => process.stderr.write(`${Date.now()} ${m.text()}\n`));
  await page.goto(pageURL, { waitUntil: 'load', timeout: 15000 });
  for (let i = 0; i < seconds; i++) {
    await page.waitForTimeout(1000);
    const stats = await page.evaluate(t => {
      const s = window.playerStats ? window.playerStats() : null;
      if (s && t && window.rtmpgateTrace) s.trace = window.rtmpgateTrace();
      return s;
    }, trace);
    console.log(JSON.stringify({ t: i + 1, ...stats }));
  }
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
