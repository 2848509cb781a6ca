// Plays a ladder in web/play.html and drives the page's rendition picker as a
// viewer would: it waits for the picker to list the renditions, picks the
// lowest, then the highest, then "auto", and prints one JSON line with the
// options and, per pick, the height the video showed and how long that took.
// Usage: node picker.mjs PAGE_URL
import { launchChromium } from './browser.mjs';

const [pageURL] = process.argv.slice(2);
const browser = await launchChromium();
const out = { options: [], steps: [], auto: null, pageerror: '' };
try {
  const page = await browser.newPage();
  page.on('pageerror', e => { out.pageerror = String(e); });
  await page.goto(pageURL);
  await page.waitForFunction(() => document.querySelectorAll('#rendition option').length >= 3, null, { timeout: 30000 });
  out.options = await page.$$eval('#rendition option', os => os.map(o => ({ value: o.value, text: o.textContent })));
  const real = out.options.filter(o => o.value !== '-1').map(o => ({ ...o, height: parseInt(o.text, 10) }));
  const byHeight = [...real].sort((a, b) => a.height - b.height);
  for (const o of [byHeight[0], byHeight[byHeight.length - 1]]) {
    const t0 = Date.now();
    await page.selectOption('#rendition', o.value);
    let got = 0;
    try {
      await page.waitForFunction(h => document.getElementById('video').videoHeight === h, o.height, { timeout: 15000 });
      got = o.height;
    } catch {
      got = await page.evaluate(() => document.getElementById('video').videoHeight);
    }
    const picked = await page.$eval('#rendition', s => s.value);
    out.steps.push({ want: o.height, got, picked, ms: Date.now() - t0 });
  }
  await page.selectOption('#rendition', '-1');
  await page.waitForTimeout(1500);
  out.auto = await page.evaluate(() => ({ chosen: window.rtmpgateTracePlayer().chosen(), select: document.getElementById('rendition').value }));
} catch (e) {
  out.pageerror = out.pageerror || String(e);
} finally {
  console.log(JSON.stringify(out));
  await browser.close();
}
