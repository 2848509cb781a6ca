// The headless Chromium every web/test script plays in: Debian's chromium
// (CHROMIUM overrides the path), autoplay allowed, no network of its own
// beside the page's. background: also keep pages that are not in front
// running at full speed, for scripts that play several pages at once.
import { chromium } from 'playwright-core';

export function launchChromium({ background = false } = {}) {
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (background) {
    args.push('--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows');
  }
  args.push('--autoplay-policy=no-user-gesture-required');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
  });
}
