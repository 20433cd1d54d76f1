// The page at /: lists live streams (/live/index.json) and plays one with
// hls.js, with a quality selector over the ladder's renditions; uploads
// files with tus-js-client to /api/v1/uploads and lists the assets, kept up
// to date by the events WebSocket (/api/v1/events).  The API token lives in
// sessionStorage only: it goes when the tab closes.
'use strict';

const live = document.getElementById('live');
const video = document.getElementById('video');
const quality = document.getElementById('quality');
const statusEl = document.getElementById('status');
let hls = null;
let playing = null;

function play(name) {
  const base = `/live/${encodeURIComponent(name)}`;
  playUrl(name, `${base}/index.m3u8`, `${base}/index.mpd`);
}

function playUrl(title, url, dashUrl) {
  playing = title;
  document.getElementById('player').hidden = false;
  document.getElementById('title').textContent = title;
  document.getElementById('hls-link').href = url;
  document.getElementById('dash-link').href = dashUrl;
  if (hls) hls.destroy();
  quality.length = 1;
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls();
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      data.levels.forEach((l, i) => {
        const o = document.createElement('option');
        o.value = i;
        o.textContent = `${l.height}p ${(l.bitrate / 1000).toFixed(0)} kb/s`;
        quality.appendChild(o);
      });
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) statusEl.textContent = `player error: ${data.details}`;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;            // Safari plays HLS natively
    video.play().catch(() => {});
  } else {
    statusEl.textContent = 'hls.js is missing: run scripts/setup';
  }
}

quality.addEventListener('change', () => {
  if (hls) hls.currentLevel = Number(quality.value);
});

async function refresh() {
  try {
    const r = await fetch('/live/index.json', { cache: 'no-store' });
    const { streams } = await r.json();
    live.replaceChildren();
    if (!streams.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'Nothing is live.';
      live.appendChild(li);
    }
    for (const s of streams) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.textContent = s.ended ? `${s.name} (ended)` : s.name;
      b.addEventListener('click', () => play(s.name));
      li.appendChild(b);
      live.appendChild(li);
    }
    statusEl.textContent = '';
  } catch (e) {
    statusEl.textContent = `cannot list streams: ${e}`;
  }
}

refresh();
setInterval(refresh, 5000);

// ---- uploads and assets ------------------------------------------------------

const tokenInput = document.getElementById('token');
const fileInput = document.getElementById('file');
const pauseBtn = document.getElementById('upload-pause');
const resumeBtn = document.getElementById('upload-resume');
const bar = document.getElementById('upload-bar');
const barText = document.getElementById('upload-text');
const rows = document.getElementById('asset-rows');
const eventsState = document.getElementById('events-state');
const assets = new Map();       // id -> asset object, as GET /api/v1/assets gives
let token = sessionStorage.getItem('weir.token') || '';
let upload = null;
let events = null;
let rate = { t: 0, bytes: 0, bps: 0 };

tokenInput.value = token;

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function progressOf(a) {
  if (a.state === 'processing' && a.percent != null) return `${a.percent}%`;
  if (a.state === 'uploading' && a.size) return `${Math.floor(100 * (a.received || 0) / a.size)}%`;
  if (a.state === 'failed') return a.reason || '';
  if (a.state === 'ready' && a.duration_s) return `${a.duration_s.toFixed(1)} s`;
  return '';
}

function renderAssets() {
  const list = [...assets.values()].sort((a, b) => (b.created || '').localeCompare(a.created || ''));
  rows.replaceChildren();
  for (const a of list) {
    const tr = document.createElement('tr');
    tr.dataset.id = a.id;
    const name = document.createElement('td');
    name.textContent = a.name || a.id;
    const state = document.createElement('td');
    state.className = `state ${a.state}`;
    state.textContent = a.state;
    const prog = document.createElement('td');
    prog.className = 'progress';
    prog.textContent = progressOf(a);
    const act = document.createElement('td');
    if (a.state === 'ready') {
      const b = document.createElement('button');
      b.className = 'play';
      b.textContent = 'Play';
      b.addEventListener('click', () => playUrl(a.name || a.id, a.hls || `/vod/${a.id}/index.m3u8`,
                                                a.dash || `/vod/${a.id}/index.mpd`));
      act.appendChild(b);
    }
    tr.append(name, state, prog, act);
    rows.appendChild(tr);
  }
}

async function loadAssets() {
  if (!token) return;
  try {
    const r = await fetch('/api/v1/assets', { headers: authHeaders(), cache: 'no-store' });
    if (r.status === 401 || r.status === 403) {
      statusEl.textContent = 'the API token was refused';
      return;
    }
    const { assets: list } = await r.json();
    assets.clear();
    for (const a of list) assets.set(a.id, a);
    renderAssets();
  } catch (e) {
    statusEl.textContent = `cannot list assets: ${e}`;
  }
}

// Events: asset.* update a row in place; stream.* refresh the live list.
// Browsers cannot set headers on a WebSocket, so the token rides in the
// subprotocol list ("weir" is what the server answers with).
function connectEvents() {
  if (events) events.close();
  events = null;
  if (!token) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/events`, ['weir', `bearer.${token}`]);
  events = ws;
  eventsState.textContent = 'events: connecting';
  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === 'ready') {
      eventsState.textContent = 'events: live';
      loadAssets();             // anything that changed before we listened
    } else if (e.type === 'asset.created' || e.type === 'asset.state') {
      assets.set(e.data.id, { ...(assets.get(e.data.id) || {}), ...e.data });
      if (e.data.state !== 'processing') delete assets.get(e.data.id).percent;
      renderAssets();
    } else if (e.type === 'asset.deleted') {
      assets.delete(e.data.id);
      renderAssets();
    } else if (e.type === 'upload.progress') {
      const a = assets.get(e.data.id);
      if (a) { a.received = e.data.offset; renderAssets(); }
    } else if (e.type === 'stream.started' || e.type === 'stream.ended') {
      refresh();
    }
  };
  ws.onclose = (c) => {
    if (events !== ws) return;
    eventsState.textContent = c.code === 4401 || c.code === 4403 ? 'events: token refused'
                                                                 : 'events: reconnecting';
    if (c.code !== 4401 && c.code !== 4403) setTimeout(connectEvents, 3000);
  };
}

document.getElementById('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = tokenInput.value.trim();
  sessionStorage.setItem('weir.token', token);
  loadAssets();
  connectEvents();
});

document.getElementById('forget').addEventListener('click', () => {
  token = '';
  tokenInput.value = '';
  sessionStorage.removeItem('weir.token');
  if (events) events.close();
  events = null;
  assets.clear();
  renderAssets();
  eventsState.textContent = '';
});

function showProgress(sent, total) {
  const now = performance.now();
  if (now - rate.t >= 1000) {
    if (rate.t) rate.bps = (sent - rate.bytes) * 1000 / (now - rate.t);
    rate = { t: now, bytes: sent, bps: rate.bps };
  }
  const pct = total ? (100 * sent / total) : 0;
  bar.value = pct;
  barText.textContent = `${pct.toFixed(1)}% · ${fmtBytes(sent)} of ${fmtBytes(total)}` +
                        (rate.bps > 0 ? ` · ${fmtBytes(rate.bps)}/s` : '');
}

document.getElementById('upload-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = fileInput.files[0];
  if (!file) return;
  if (!token) { statusEl.textContent = 'enter an API token with write scope first'; return; }
  if (!window.tus) { statusEl.textContent = 'tus-js-client is missing: run scripts/setup'; return; }
  document.getElementById('upload-progress').hidden = false;
  rate = { t: 0, bytes: 0, bps: 0 };
  upload = new tus.Upload(file, {
    endpoint: '/api/v1/uploads',
    headers: authHeaders(),
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    metadata: { filename: file.name, name: file.name },
    removeFingerprintOnSuccess: true,
    onProgress: showProgress,
    onError: (err) => {
      barText.textContent = `upload failed: ${err.message || err}`;
      pauseBtn.disabled = true;
      resumeBtn.disabled = false;
    },
    onSuccess: () => {
      barText.textContent = `uploaded ${file.name}; processing`;
      pauseBtn.disabled = resumeBtn.disabled = true;
      loadAssets();
    },
  });
  // A file this browser began uploading before (same name, size, date)
  // continues where the server says it stopped.
  const previous = await upload.findPreviousUploads();
  if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
  upload.start();
  pauseBtn.disabled = false;
  resumeBtn.disabled = true;
});

pauseBtn.addEventListener('click', () => {
  if (!upload) return;
  upload.abort();
  barText.textContent += ' · paused';
  pauseBtn.disabled = true;
  resumeBtn.disabled = false;
});

resumeBtn.addEventListener('click', () => {
  if (!upload) return;
  upload.start();               // asks the server for its offset (HEAD) first
  pauseBtn.disabled = false;
  resumeBtn.disabled = true;
});

loadAssets();
connectEvents();
