#!/usr/bin/env node
// Plays one HLS or DASH URL in Debian's headless Chromium with hls.js or
// dash.js and prints one JSON line with the verdict.  Exit 0: pass, 1: fail,
// 2: bad usage.  See README.md for the options.
//
// The page and the player libraries are served by page.route on a fake
// origin (http://player.test/) from this folder and node_modules/, so the
// media requests to the server under test are cross-origin and need its CORS
// headers, as they would in a real deployment.

import { chromium } from 'playwright-core';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const ORIGIN = 'http://player.test';

const USAGE = `usage: node play.mjs --url URL --player hls|dash [--seconds 10] [--timeout 60]
       [--low-latency] [--live-delay S] [--expect-sizes WxH,WxH] [--screenshot out.png]
       [--seek S] [--abr-switch] [--abr-cap-kbps N] [--insecure] [--chromium PATH] [--verbose]
       [--player-debug] [--playing-file PATH] [--seek-buffered-end-file PATH]`;

function usage(msg) {
  process.stderr.write(`play.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        player: { type: 'string' },
        seconds: { type: 'string', default: '10' },
        timeout: { type: 'string', default: '60' },
        'low-latency': { type: 'boolean', default: false },
        'live-delay': { type: 'string' },
        'expect-sizes': { type: 'string' },
        screenshot: { type: 'string' },
        seek: { type: 'string' },
        'abr-switch': { type: 'boolean', default: false },
        'abr-cap-kbps': { type: 'string' },
        insecure: { type: 'boolean', default: false },
        chromium: { type: 'string', default: process.env.WEIR_CHROMIUM || '/usr/bin/chromium' },
        verbose: { type: 'boolean', default: false },
        'player-debug': { type: 'boolean', default: false },
        'playing-file': { type: 'string' },
        'seek-buffered-end-file': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    usage(e.message);
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); process.exit(0); }
  if (!values.url) usage('--url is required');
  if (values.player !== 'hls' && values.player !== 'dash') usage('--player must be hls or dash');
  const num = (name, v, min) => {
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number >= ${min}`);
    return n;
  };
  const o = {
    url: values.url,
    player: values.player,
    seconds: num('seconds', values.seconds, 0),
    timeout: num('timeout', values.timeout, 1),
    lowLatency: values['low-latency'],
    liveDelay: num('live-delay', values['live-delay'], 0.1),
    expectSizes: null,
    screenshot: values.screenshot || null,
    seek: num('seek', values.seek, 0),
    abrSwitch: values['abr-switch'],
    abrCapKbps: num('abr-cap-kbps', values['abr-cap-kbps'], 1),
    insecure: values.insecure,
    chromium: values.chromium,
    // The player's own debug log goes to the page's console, which only
    // --verbose shows.
    playerDebug: values['player-debug'],
    playingFile: values['playing-file'] || null,
    seekBufferedEndFile: values['seek-buffered-end-file'] || null,
    verbose: values.verbose || values['player-debug'],
  };
  if (values['expect-sizes']) {
    o.expectSizes = values['expect-sizes'].split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of o.expectSizes) if (!/^\d+x\d+$/.test(s)) usage(`--expect-sizes: bad size '${s}'`);
  }
  return o;
}

const o = parse();
const T0 = Date.now();
const log = (...a) => {
  if (o.verbose) process.stderr.write(`play.mjs: ${((Date.now() - T0) / 1000).toFixed(2)} ${a.join(' ')}\n`);
};

// Files the fake origin serves: path -> [file, content type].
const ROUTES = {
  '/': [join(HERE, 'harness/index.html'), 'text/html'],
  '/harness/harness.js': [join(HERE, 'harness/harness.js'), 'text/javascript'],
  '/lib/hls.min.js': [join(HERE, 'node_modules/hls.js/dist/hls.min.js'), 'text/javascript'],
  '/lib/dash.all.min.js': [join(HERE, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'), 'text/javascript'],
};
for (const [, [file]] of Object.entries(ROUTES)) {
  if (!existsSync(file)) {
    process.stderr.write(`play.mjs: missing ${file}; run 'npm ci' in player-test/ (scripts/setup does)\n`);
    process.exit(2);
  }
}

function pkgVersion(name) {
  try { return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version; }
  catch { return null; }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Fail extends Error {}

const result = {
  pass: false,
  reason: null,
  player: o.player,
  url: o.url,
  versions: { chromium: null, player: pkgVersion(o.player === 'hls' ? 'hls.js' : 'dashjs'),
    playwright: pkgVersion('playwright-core') },
};
const wallStart = Date.now();
const consoleErrors = [];
const httpErrors = [];
// Media responses from the server under test and the cross-origin headers
// they lacked: hls.js and dash.js need Access-Control-Allow-Origin; dash.js
// also needs Timing-Allow-Origin to measure throughput (Resource Timing shows
// transfer sizes cross-origin only with it; without it its ABR sees cache hits).
const cors = { responses: 0, missing_allow_origin: 0, missing_timing_allow_origin: 0 };

let browser = null;
let page = null;
let snap = null;
const deadline = wallStart + o.timeout * 1000;

async function snapshot() {
  snap = await page.evaluate(() => window.weir.snapshot());
  return snap;
}

// Polls the page until pred(snapshot) is true.  Fails at once on a fatal
// player error, on the end of a VOD, or when the run's --timeout or the
// step's own limit (seconds) is reached.
async function waitFor(what, pred, limitS = Infinity) {
  const stepDeadline = Math.min(deadline, Date.now() + limitS * 1000);
  for (;;) {
    const s = await snapshot();
    if (s.errors.fatal.length) throw new Fail(`fatal player error: ${s.errors.fatal[0]}`);
    if (pred(s)) return s;
    if (o.verbose && o.abrSwitch) log(`  level ${s.playing_level} loading ${s.loading_level} bw ${s.bandwidth_estimate_bps}`);
    if (s.ended) throw new Fail(`stream ended after ${s.played_s}s played while waiting for ${what}`);
    if (Date.now() >= stepDeadline) {
      const which = stepDeadline === deadline ? `--timeout ${o.timeout}s` : `${limitS}s`;
      throw new Fail(`timed out (${which}) waiting for ${what}; played ${s.played_s}s, ` +
        `currentTime ${s.current_time}, readyState ${s.ready_state}`);
    }
    await sleep(250);
  }
}

const bitrateOf = (s, idx) => {
  const l = s.levels.find((x) => x.index === idx);
  return l ? l.bitrate : null;
};

async function doSeek() {
  const target = o.seek;
  await waitFor(`2s of playback before seeking`, (s) => s.played_s >= Math.min(2, o.seconds));
  log(`seeking to ${target}`);
  const before = snap.played_s;
  const seekedBefore = snap.seeked;
  await page.evaluate((t) => window.weir.seek(t), target);
  // Landed: a 'seeked' event since, not seeking any more, and data to play.
  const s = await waitFor(`the seek to ${target}s to land`,
    (x) => x.seeked > seekedBefore && !x.seeking && x.ready_state >= 3, 15);
  const landed = s.current_time;
  result.seek = { target, landed };
  if (Math.abs(landed - target) > 1.0) throw new Fail(`seek to ${target}s landed at ${landed}s`);
  const adv = await waitFor(`playback to advance after the seek`,
    (x) => x.current_time >= landed + 1.5 && x.played_s >= before + 1.5, 15);
  result.seek.advanced_to = adv.current_time;
}

async function doAbrSwitch(cdp) {
  let s = await waitFor('the level list', (x) => x.levels.length > 0, 30);
  if (s.levels.length < 2) throw new Fail(`--abr-switch needs >= 2 levels, the stream has ${s.levels.length}`);
  const rates = s.levels.map((l) => l.bitrate).filter(Boolean).sort((a, b) => a - b);
  const top = rates[rates.length - 1];
  const low = rates[0];
  // A cap between the two lowest levels: enough for the lowest one only.
  const capKbps = o.abrCapKbps ?? Math.round(Math.max(low * 1.3, Math.sqrt(low * rates[1])) / 1000);
  const abr = { cap_kbps: capKbps, top_bitrate: top, low_bitrate: low };
  result.abr = abr;

  s = await waitFor('the top level on screen', (x) => bitrateOf(x, x.playing_level) === top, 30);
  abr.top_at_s = s.wall_s;
  log(`top level on screen at ${s.wall_s}s; capping to ${capKbps} kbit/s`);

  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 20,
    downloadThroughput: (capKbps * 1000) / 8, uploadThroughput: (capKbps * 1000) / 8,
  });
  abr.capped_at_s = (await snapshot()).wall_s;
  s = await waitFor('a lower level on screen under the bandwidth cap',
    (x) => { const b = bitrateOf(x, x.playing_level); return b !== null && b < top; }, 40);
  const downRate = bitrateOf(s, s.playing_level);
  abr.down_at_s = s.wall_s;
  abr.down_bitrate = downRate;
  log(`switched down to ${downRate} at ${s.wall_s}s; lifting the cap`);

  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  abr.uncapped_at_s = (await snapshot()).wall_s;
  s = await waitFor('a higher level on screen after lifting the cap',
    (x) => { const b = bitrateOf(x, x.playing_level); return b !== null && b > downRate; }, 40);
  abr.up_at_s = s.wall_s;
  abr.up_bitrate = bitrateOf(s, s.playing_level);
  log(`switched up to ${abr.up_bitrate} at ${s.wall_s}s`);
}

// --seek-buffered-end-file: once the file exists, seek (once) to the end of
// what the page has buffered.  That is where dash.js's live catch-up lands
// when it finds itself too far behind the live point: it seeks to the live
// point "stuck to what is buffered".  During a publisher's outage the end of
// the buffer is the last media before the outage, so a test can make that
// seek happen at a moment of its choosing instead of by chance.
let bufferedEndSeekBusy = false;
async function seekBufferedEndOnFile() {
  if (bufferedEndSeekBusy || result.buffered_end_seek || !existsSync(o.seekBufferedEndFile)) return;
  bufferedEndSeekBusy = true;
  try {
    result.buffered_end_seek = await page.evaluate(() => {
      const v = document.getElementById('video');
      const b = v.buffered;
      const from = v.currentTime;
      const to = b.length ? b.end(b.length - 1) : null;
      if (to !== null) v.currentTime = to;
      return { from, to };
    });
    log(`seeked from ${result.buffered_end_seek.from} to the buffered end ${result.buffered_end_seek.to}`);
  } catch { /* page gone: the run's verdict says why */ }
  bufferedEndSeekBusy = false;
}

async function run() {
  browser = await chromium.launch({
    executablePath: o.chromium,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      // The page's origin is not a secure context and the server is on
      // loopback: Chromium's Local/Private Network Access checks would block
      // every media request before CORS is even looked at.
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights',
      // --insecure: an HTTPS server with a self-signed certificate (tests).
      ...(o.insecure ? ['--ignore-certificate-errors'] : []),
    ],
  });
  result.versions.chromium = browser.version();
  log('chromium launched');
  const context = await browser.newContext({ viewport: { width: 640, height: 400 },
                                             ignoreHTTPSErrors: o.insecure });
  page = await context.newPage();

  page.on('console', (m) => {
    if (m.type() === 'error' && consoleErrors.length < 20) consoleErrors.push(m.text());
    log(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => { if (consoleErrors.length < 20) consoleErrors.push('pageerror: ' + e.message); });
  page.on('requestfailed', (r) => {
    if (!r.url().startsWith(ORIGIN) && httpErrors.length < 20) httpErrors.push(`${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.url().startsWith(ORIGIN)) return;
    if (r.status() >= 400 && httpErrors.length < 20) httpErrors.push(`${r.url()}: HTTP ${r.status()}`);
    const h = r.headers();
    cors.responses++;
    if (!h['access-control-allow-origin']) cors.missing_allow_origin++;
    if (!h['timing-allow-origin']) cors.missing_timing_allow_origin++;
  });

  await page.route(ORIGIN + '/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    const hit = ROUTES[path];
    if (!hit) return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
    return route.fulfill({ status: 200, contentType: hit[1], body: readFileSync(hit[0]) });
  });

  log('page open');
  await page.goto(ORIGIN + '/');
  await page.addScriptTag({ url: o.player === 'hls' ? '/lib/hls.min.js' : '/lib/dash.all.min.js' });
  const cdp = o.abrSwitch ? await context.newCDPSession(page) : null;
  if (cdp) await cdp.send('Network.enable');

  await page.evaluate((opts) => window.weir.start(opts), {
    url: o.url, player: o.player, lowLatency: o.lowLatency, liveDelay: o.liveDelay, abrTuning: o.abrSwitch,
    playerDebug: o.playerDebug,
  });

  log('player started');
  await waitFor('the first frame', (s) => s.startup_s !== null);
  log('first frame');
  // Lets a test act on the stream (drop the publisher, say) once this player
  // is known to be playing, however long the browser took to start.
  if (o.playingFile) writeFileSync(o.playingFile, `${snap.current_time}\n`);
  if (o.seek !== null) await doSeek();
  if (o.abrSwitch) await doAbrSwitch(cdp);
  const poll = o.seekBufferedEndFile ? setInterval(seekBufferedEndOnFile, 100) : null;
  try {
    await waitFor(`${o.seconds}s of playback`, (s) => s.played_s >= o.seconds);
  } finally {
    if (poll) clearInterval(poll);
  }

  if (o.expectSizes) {
    if (!snap.sizes.length) throw new Fail(`no video frame seen (audio only?); --expect-sizes ${o.expectSizes.join(',')}`);
    const bad = snap.sizes.map((x) => x.size).filter((x) => !o.expectSizes.includes(x));
    if (bad.length) throw new Fail(`video size(s) ${bad.join(',')} not in --expect-sizes ${o.expectSizes.join(',')}`);
  }
}

// Last resort if the browser hangs (a wedged page.evaluate never returns):
// still print a verdict and exit.
const watchdog = setTimeout(() => {
  result.reason = `watchdog: no verdict ${o.timeout + 30}s after start`;
  result.wall_s = Math.round((Date.now() - wallStart) / 10) / 100;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.stderr.write(`play.mjs: FAIL ${o.player} ${o.url}: ${result.reason}\n`);
  process.exit(1);
}, (o.timeout + 30) * 1000);
watchdog.unref();

let code = 1;
try {
  await run();
  result.pass = true;
  code = 0;
} catch (e) {
  result.reason = e instanceof Fail ? e.message : `harness error: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`;
}

// Final state, screenshot (also of a failure: that is when it helps most).
try { if (page) await snapshot(); } catch { /* page gone */ }
if (snap) {
  const { errors, ...rest } = snap;
  Object.assign(result, rest, { errors });
  result.sizes = snap.sizes.map((x) => x.size);
  result.size_history = snap.sizes;
}
result.wall_s = Math.round((Date.now() - wallStart) / 10) / 100;
result.page_wall_s = snap ? snap.wall_s : null;
result.cors = cors;
if (consoleErrors.length) result.console_errors = consoleErrors;
if (httpErrors.length) result.http_errors = httpErrors;
if (o.screenshot && page) {
  try { await page.screenshot({ path: o.screenshot }); result.screenshot = o.screenshot; }
  catch (e) { result.screenshot_error = e.message; }
}
log('closing');
try { if (browser) await browser.close(); } catch { /* already gone */ }
log('closed');

process.stdout.write(JSON.stringify(result) + '\n');
if (!result.pass) process.stderr.write(`play.mjs: FAIL ${o.player} ${o.url}: ${result.reason}\n`);
process.exit(code);
