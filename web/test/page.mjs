// Drives the status page like a person: waits for a stream to be listed, clicks one
// of its play buttons, and prints the player's state once a second as JSON lines.
// Usage: node page.mjs PAGE_URL APP/STREAM KIND SECONDS SCREENSHOT.png [PHONE_SCREENSHOT.png]
import { launchChromium } from './browser.mjs';

const [pageURL, stream, kind, secondsArg, screenshot, phoneShot] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', e => console.log(JSON.stringify({ pageerror: String(e) })));
  await page.goto(pageURL, { waitUntil: 'load', timeout: 15000 });
  const started = Date.now();
  const row = page.locator(`[data-stream="${stream}"]`);
  await row.waitFor({ timeout: 15000 });
  console.log(JSON.stringify({ listedAfterMs: Date.now() - started, text: await row.innerText() }));
  await row.locator(`button[data-kind="${kind}"]`).click();
  for (let i = 0; i < Number(secondsArg); i++) {
    await page.waitForTimeout(1000);
    console.log(JSON.stringify({ t: i + 1, ...(await page.evaluate(() => window.playerStats())) }));
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  if (phoneShot) {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    console.log(JSON.stringify({ phoneOverflowPx: overflow }));
    await page.screenshot({ path: phoneShot, fullPage: true });
  }
} finally {
  await browser.close();
}
