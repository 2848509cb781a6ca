// Plays one stream in headless Chromium and prints one JSON line per second with the
// player's state, for the Go tests to judge.
// Usage: node play.mjs PAGE_URL SECONDS [SCREENSHOT.png]
import { chromium } from 'playwright-core';

const [pageURL, secondsArg, screenshot] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.on('pageerror', e => console.log(JSON.stringify({ pageerror: String(e) })));
  await page.goto(pageURL, { waitUntil: 'load', timeout: 15000 });
  for (let i = 0; i < seconds; i++) {
    await page.waitForTimeout(1000);
    const stats = await page.evaluate(() => window.playerStats ? window.playerStats() : null);
    console.log(JSON.stringify({ t: i + 1, ...stats }));
  }
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
