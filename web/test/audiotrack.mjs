// Plays a multitrack publish's multivariant playlist with hls.js in headless
// Chromium, picks its second audio track (hls.audioTrack = 1) and prints one
// JSON object for the Go test to judge: the audio tracks hls.js read (name,
// language, default, URL), whether the switch happened, the audio fragments
// loaded after it and from which playlist, the play position it advanced,
// stalls, and the dominant frequency of what the page heard before and after
// (Web Audio AnalyserNode on the media element, Hz).
// Usage: node audiotrack.mjs ORIGIN MULTIVARIANT_URL
import { launchChromium } from './browser.mjs';

const [origin, src] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('pageerror', e => console.log(JSON.stringify({ pageerror: String(e) })));
  await page.goto(origin + '/healthz', { waitUntil: 'load', timeout: 15000 });
  await page.setContent('<video autoplay playsinline></video>');
  await page.addScriptTag({ url: origin + '/vendor/hls.min.js' });
  const out = await page.evaluate(async (src) => {
    const video = document.querySelector('video');
    const hls = new Hls();
    const r = { tracks: [], errors: [], waiting: 0, stallMs: 0, fragsAfter: [] };
    let switched = false;
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_, d) => {
      r.tracks = d.audioTracks.map(t => ({ name: t.name, lang: t.lang || '', default: !!t.default, url: t.url }));
    });
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => { if (d.id === 1) switched = true; });
    // Low-latency playlists load parts: their URL is the part's.
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
      const url = (d.part && d.part.url) || d.frag.url || '';
      if (switched && d.frag.type === 'audio') r.fragsAfter.push(url.replace(/^.*\/live\/[^/]+\//, ''));
    });
    hls.on(Hls.Events.ERROR, (_, d) => r.errors.push(d.details + (d.fatal ? ' (fatal)' : '')));
    let waitingSince = 0;
    video.addEventListener('waiting', () => { r.waiting++; waitingSince = performance.now(); });
    video.addEventListener('playing', () => { if (waitingSince) r.stallMs += performance.now() - waitingSince; waitingSince = 0; });
    // What the page plays, through an analyser: the loudest bin's frequency.
    const ctx = new AudioContext();
    const an = ctx.createAnalyser();
    an.fftSize = 16384;
    ctx.createMediaElementSource(video).connect(an);
    an.connect(ctx.destination);
    const bins = new Float32Array(an.frequencyBinCount);
    const peak = () => {
      an.getFloatFrequencyData(bins);
      let k = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[k]) k = i;
      return Math.round(k * ctx.sampleRate / an.fftSize);
    };
    hls.loadSource(src);
    hls.attachMedia(video);
    const sleep = ms => new Promise(res => setTimeout(res, ms));
    const until = async (ok, ms) => { for (let i = 0; i < ms / 100 && !ok(); i++) await sleep(100); return ok(); };
    if (!await until(() => video.currentTime > 2 && r.tracks.length > 0, 30000)) { r.currentTime = video.currentTime; return r; }
    await ctx.resume();
    await sleep(1500);
    r.contextState = ctx.state;
    r.before = { track: hls.audioTrack, hz: peak() };
    // Stalls count from the switch on: the start-up wait is not the switch's.
    r.stallMs = 0;
    if (waitingSince) waitingSince = performance.now();
    hls.audioTrack = 1;
    r.switched = await until(() => switched, 20000);
    // hls.js flushes the old track's audio and loads the new one from the
    // play position; judge what plays once 3 s of media have played after two
    // of its fragments loaded, sampling the last of them (wall time bounded).
    await until(() => r.fragsAfter.length >= 2, 20000);
    const t0 = video.currentTime;
    const started = performance.now();
    await until(() => video.currentTime - t0 >= 3, 12000);
    r.after = { track: hls.audioTrack, hz: peak(), advanced: +(video.currentTime - t0).toFixed(2), wallMs: Math.round(performance.now() - started) };
    if (waitingSince) r.stallMs += performance.now() - waitingSince;
    r.stallMs = Math.round(r.stallMs);
    r.currentTime = video.currentTime;
    hls.destroy();
    return r;
  }, src);
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
