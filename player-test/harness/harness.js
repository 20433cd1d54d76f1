// In-page side of play.mjs.  play.mjs loads one player library (hls.js or
// dash.js) into this page, then calls weir.start(opts) and polls weir.snapshot().
// Everything the verdict needs is measured here, in the page, on one clock.
'use strict';

(function () {
  const video = document.getElementById('video');
  const statusEl = document.getElementById('status');
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  const r3 = (x) => (x == null || !isFinite(x) ? null : Math.round(x * 1000) / 1000);

  const S = {
    player: null,
    live: null,              // null until the player knows
    lowLatencyMode: null,    // what the player says it runs in
    startupS: null,          // wall seconds from start() to the first advancing frame
    played: 0,               // media seconds actually played (seeks and jumps excluded)
    sizes: [],               // [{size, at}] each video size the first time it shows
    levels: [],              // [{index, width, height, bitrate}] video levels/representations
    playingLevel: null,      // index of the level on screen
    loadingLevel: null,      // index of the level being fetched
    levelHistory: [],        // [{at, index, bitrate, height}] playing level changes
    loadHistory: [],         // same for the level being fetched
    nonFatal: 0,
    nonFatalDetails: {},     // details -> count
    fatal: [],               // messages
    stalls: 0,
    stallS: 0,
    latency: { n: 0, sum: 0, min: null, max: null, last: null },
    targetLatency: null,
    ended: false,
    seeks: 0,
    seeked: 0,               // 'seeked' events
  };

  let hls = null;
  let dash = null;
  let everPlayed = false;
  let lastCt = null;
  let lastNow = null;
  let stallStart = null;

  function levelByIndex(i) {
    return S.levels.find((l) => l.index === i) || null;
  }

  function note(history, index) {
    const l = levelByIndex(index);
    const last = history[history.length - 1];
    if (last && last.index === index) return;
    history.push({ at: r3(since()), index, bitrate: l ? l.bitrate : null, height: l ? l.height : null });
  }

  function fatal(msg) {
    if (S.fatal.length < 20) S.fatal.push(String(msg));
  }

  function nonFatal(details) {
    S.nonFatal++;
    S.nonFatalDetails[details] = (S.nonFatalDetails[details] || 0) + 1;
  }

  // --- media element ---------------------------------------------------
  video.addEventListener('seeking', () => { lastCt = null; });
  video.addEventListener('seeked', () => { S.seeked++; });
  video.addEventListener('waiting', () => {
    if (everPlayed && !video.seeking && !video.ended && stallStart === null) {
      S.stalls++;
      stallStart = performance.now();
    }
  });
  video.addEventListener('playing', () => {
    if (stallStart !== null) {
      S.stallS += (performance.now() - stallStart) / 1000;
      stallStart = null;
    }
  });
  video.addEventListener('ended', () => { S.ended = true; });
  video.addEventListener('error', () => {
    const e = video.error;
    fatal('media element error ' + (e ? e.code + ' ' + (e.message || '') : ''));
  });

  function tick() {
    const now = performance.now();
    const ct = video.currentTime;
    if (lastCt !== null && !video.seeking) {
      const d = ct - lastCt;
      const wall = (now - lastNow) / 1000;
      // Count forward motion at up to ~2.5x speed (live catch-up plays
      // faster); bigger jumps are seeks or gap skips, not playback.
      if (d > 0 && d <= wall * 2.5 + 0.25) {
        S.played += d;
        if (!everPlayed) {
          everPlayed = true;
          S.startupS = r3(since());
        }
      }
    }
    lastCt = ct;
    lastNow = now;

    if (video.videoWidth > 0) {
      const size = video.videoWidth + 'x' + video.videoHeight;
      if (!S.sizes.some((s) => s.size === size)) S.sizes.push({ size, at: r3(since()) });
    }

    let lat = null;
    if (hls && S.live) {
      lat = hls.latency;
      S.targetLatency = r3(hls.targetLatency);
    } else if (dash && S.live) {
      try {
        lat = dash.getCurrentLiveLatency();
        S.targetLatency = r3(dash.getTargetLiveDelay());
        S.lowLatencyMode = dash.getLowLatencyModeEnabled();
      } catch (e) { /* not initialised yet */ }
    }
    if (everPlayed && lat != null && isFinite(lat) && lat > 0) {
      const L = S.latency;
      L.n++; L.sum += lat; L.last = lat;
      L.min = L.min === null ? lat : Math.min(L.min, lat);
      L.max = L.max === null ? lat : Math.max(L.max, lat);
    }
    statusEl.textContent = S.player + ' t=' + ct.toFixed(2) + ' played=' + S.played.toFixed(2) +
      ' size=' + video.videoWidth + 'x' + video.videoHeight +
      ' level=' + S.playingLevel + (lat ? ' latency=' + lat.toFixed(2) : '');
  }

  // --- hls.js ----------------------------------------------------------
  function startHls(url, o) {
    const Hls = window.Hls;
    if (!Hls.isSupported()) { fatal('hls.js: MediaSource not supported'); return; }
    const cfg = {
      debug: !!o.playerDebug,
      enableWorker: true,
      lowLatencyMode: !!o.lowLatency,   // hls.js defaults to true; make the flag mean something
    };
    if (o.lowLatency) {
      // hls.js joins at the last independent part before its target, up to
      // one GOP behind; let it play slightly fast to close that gap (its
      // default, 1, never catches up).
      cfg.maxLiveSyncPlaybackRate = 1.5;
    }
    if (o.liveDelay != null) {
      cfg.liveSyncDuration = o.liveDelay;
      cfg.liveMaxLatencyDuration = Math.max(o.liveDelay * 3, o.liveDelay + 6);
    }
    if (o.abrTuning) {
      // React to bandwidth in seconds, not tens of seconds, and keep the
      // buffer short so a switch reaches the screen soon.
      Object.assign(cfg, {
        abrEwmaFastLive: 0.5, abrEwmaSlowLive: 1, abrEwmaFastVoD: 0.5, abrEwmaSlowVoD: 1,
        maxBufferLength: 3, maxMaxBufferLength: 5,
      });
    }
    hls = new Hls(cfg);
    S.lowLatencyMode = cfg.lowLatencyMode;
    const E = Hls.Events;
    hls.on(E.ERROR, (ev, d) => {
      const msg = 'hls.js ' + d.type + ': ' + d.details +
        (d.response && d.response.code ? ' (HTTP ' + d.response.code + ')' : '') +
        (d.reason ? ' ' + d.reason : '') + (d.error && d.error.message ? ' ' + d.error.message : '') +
        (d.url ? ' ' + d.url : '') + (d.frag && d.frag.url ? ' ' + d.frag.url : '');
      if (d.fatal) fatal(msg); else nonFatal(d.details);
    });
    hls.on(E.MANIFEST_PARSED, (ev, d) => {
      S.levels = d.levels.map((l, i) => ({ index: i, width: l.width || null, height: l.height || null,
        bitrate: l.bitrate || null, codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(',') || null }));
      video.play().catch((e) => fatal('play(): ' + e.message));
    });
    hls.on(E.LEVEL_LOADED, (ev, d) => { S.live = !!d.details.live; });
    hls.on(E.LEVEL_SWITCHING, (ev, d) => { S.loadingLevel = d.level; note(S.loadHistory, d.level); });
    hls.on(E.FRAG_CHANGED, (ev, d) => {
      if (d.frag && typeof d.frag.level === 'number') { S.playingLevel = d.frag.level; note(S.levelHistory, d.frag.level); }
    });
    hls.attachMedia(video);
    hls.loadSource(url);
  }

  // --- dash.js ---------------------------------------------------------
  function startDash(url, o) {
    const dashjs = window.dashjs;
    const E = dashjs.MediaPlayer.events;
    dash = dashjs.MediaPlayer().create();
    const streaming = {};
    if (o.lowLatency) {
      // dash.js 5 has no lowLatencyEnabled switch: it enters low-latency mode
      // from the MPD (availabilityTimeOffset / ServiceDescription).  What the
      // client can ask for is catch-up to the target delay.
      streaming.liveCatchup = { enabled: true };
    }
    if (o.liveDelay != null) streaming.delay = { liveDelay: o.liveDelay };
    if (o.abrTuning) {
      streaming.buffer = { bufferTimeDefault: 4, bufferTimeAtTopQuality: 4, bufferTimeAtTopQualityLongForm: 4 };
      streaming.abr = { throughput: { ewma: { throughputFastHalfLifeSeconds: 1, throughputSlowHalfLifeSeconds: 3 } } };
    }
    // Without a UTCTiming element in the MPD dash.js would ask a public time
    // server; point that fallback at this page's origin, where it fails at
    // once, so a live MPD without UTCTiming fails here the same everywhere
    // (dash.js then tries the MPD's Date header, which a cross-origin page
    // can read only with Access-Control-Expose-Headers: Date).
    streaming.utcSynchronization = {
      defaultTimingSource: { scheme: 'urn:mpeg:dash:utc:http-xsdate:2014', value: location.origin + '/no-default-utc-timing' },
    };
    const logLevel = o.playerDebug ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING;
    dash.updateSettings({ debug: { logLevel }, streaming });
    dash.on(E.ERROR, (e) => {
      const err = e.error || {};
      let msg = 'dash.js error ' + (err.code != null ? err.code + ' ' : '') + (err.message || JSON.stringify(err));
      if (err.code === 16) msg += ' (live MPD: needs a UTCTiming element the page can fetch, or a Date header exposed by Access-Control-Expose-Headers)';
      fatal(msg);
    });
    dash.on(E.PLAYBACK_ERROR, (e) => { fatal('dash.js playbackError ' + (e.error && e.error.message || '')); });
    dash.on(E.STREAM_INITIALIZED, () => {
      S.live = dash.isDynamic();
      S.levels = dash.getRepresentationsByType('video').map((r) => ({ index: r.absoluteIndex, id: r.id,
        width: r.width || null, height: r.height || null, bitrate: r.bandwidth || null, codecs: r.codecs || null }));
      const cur = dash.getCurrentRepresentationForType('video');
      if (cur) { S.playingLevel = cur.absoluteIndex; note(S.levelHistory, cur.absoluteIndex); }
      if (cur) { S.loadingLevel = cur.absoluteIndex; note(S.loadHistory, cur.absoluteIndex); }
    });
    dash.on(E.QUALITY_CHANGE_REQUESTED, (e) => {
      if (e.mediaType === 'video' && e.newRepresentation) {
        S.loadingLevel = e.newRepresentation.absoluteIndex; note(S.loadHistory, S.loadingLevel);
      }
    });
    dash.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'video' && e.newRepresentation) {
        S.playingLevel = e.newRepresentation.absoluteIndex; note(S.levelHistory, S.playingLevel);
      }
    });
    dash.initialize(video, url, true);
  }

  // --- API for play.mjs -------------------------------------------------
  window.weir = {
    start(o) {
      S.player = o.player;
      setInterval(tick, 200);
      try {
        if (o.player === 'hls') startHls(o.url, o);
        else startDash(o.url, o);
      } catch (e) {
        fatal('player setup: ' + e.message);
      }
    },
    seek(t) {
      S.seeks++;
      if (dash) dash.seek(t); else video.currentTime = t;
    },
    snapshot() {
      const L = S.latency;
      let bw = null;
      try {
        if (hls) bw = hls.bandwidthEstimate;
        else if (dash) bw = dash.getAverageThroughput('video') * 1000;   // kbit/s
      } catch (e) { /* not ready */ }
      return {
        player: S.player,
        live: S.live,
        low_latency_mode: S.lowLatencyMode,
        startup_s: S.startupS,
        played_s: r3(S.played),
        current_time: r3(video.currentTime),
        seeking: video.seeking,
        seeked: S.seeked,
        paused: video.paused,
        ended: S.ended,
        ready_state: video.readyState,
        sizes: S.sizes,
        levels: S.levels,
        playing_level: S.playingLevel,
        loading_level: S.loadingLevel,
        bandwidth_estimate_bps: bw != null && isFinite(bw) ? Math.round(bw) : null,
        level_history: S.levelHistory,
        load_history: S.loadHistory,
        errors: { non_fatal: S.nonFatal, non_fatal_details: S.nonFatalDetails, fatal: S.fatal },
        stalls: S.stalls,
        stall_s: r3(S.stallS + (stallStart !== null ? (performance.now() - stallStart) / 1000 : 0)),
        latency_s: L.n ? { last: r3(L.last), min: r3(L.min), max: r3(L.max), avg: r3(L.sum / L.n), samples: L.n } : null,
        target_latency_s: S.targetLatency,
        wall_s: r3(since()),
      };
    },
  };
})();
