// The page at /: lists live streams (/live/index.json) and plays one with
// hls.js, with a quality selector over the ladder's renditions.
'use strict';

const live = document.getElementById('live');
const video = document.getElementById('video');
const quality = document.getElementById('quality');
const statusEl = document.getElementById('status');
let hls = null;
let playing = null;

function play(name) {
  const url = `/live/${encodeURIComponent(name)}/index.m3u8`;
  playing = name;
  document.getElementById('player').hidden = false;
  document.getElementById('title').textContent = name;
  document.getElementById('hls-link').href = url;
  document.getElementById('dash-link').href = `/live/${encodeURIComponent(name)}/index.mpd`;
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
