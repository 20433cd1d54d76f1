// The dashboard's upload form in headless Chromium (Debian's): enter a
// token, pick a file, upload with tus-js-client, and wait until the asset
// list (fed by /api/v1/events) shows it ready; then press Play and wait for
// hls.js to play it.  Prints one JSON line: {events, state, played_s, rows}.
//   node dashboard.mjs BASE_URL TOKEN FILE
import path from 'node:path';
import { chromium } from 'playwright-core';

const [base, token, file] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
         '--disable-background-networking', '--mute-audio',
         '--autoplay-policy=no-user-gesture-required',
         '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests'],
});
const out = {};
try {
  const page = await browser.newPage();
  await page.goto(base);
  await page.fill('#token', token);
  await page.click('#token-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('events-state').textContent === 'events: live',
                             null, { timeout: 15000 });
  out.events = 'live';
  await page.setInputFiles('#file', file);
  await page.click('#upload-start');
  // The row of this file (named after it), not an older asset's.
  const name = path.basename(file);
  const stateOf = (n) => {
    const tr = [...document.querySelectorAll('#asset-rows tr')]
      .find((r) => r.firstChild && r.firstChild.textContent === n);
    return tr ? tr.querySelector('td.state').textContent : null;
  };
  await page.waitForFunction(`(${stateOf})(${JSON.stringify(name)}) === 'ready' || ` +
                             `(${stateOf})(${JSON.stringify(name)}) === 'failed'`, null,
                             { timeout: 120000 });
  out.rows = await page.$$eval('#asset-rows tr', (trs) => trs.map((tr) => tr.textContent));
  out.state = await page.evaluate(`(${stateOf})(${JSON.stringify(name)})`);
  out.bar = await page.$eval('#upload-bar', (b) => b.value);
  if (out.state === 'ready') {
    await page.evaluate(`[...document.querySelectorAll('#asset-rows tr')]
      .find((r) => r.firstChild.textContent === ${JSON.stringify(name)})
      .querySelector('button.play').click()`);
    await page.waitForFunction(() => document.getElementById('video').currentTime > 1, null,
                               { timeout: 30000 });
    out.played_s = await page.$eval('#video', (v) => v.currentTime);
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
