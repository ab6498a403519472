// sidebar.js: the host's live engagement sidebar. Keeps a WebSocket to
// /api/meetings/{id}/ws?token=… open (reconnecting with 1 s → 15 s backoff), rebuilds from each
// snapshot, and renders one card per participant: face indicator, dominant expression, seven
// probability bars and a canvas timeline of the last history_secs seconds.
"use strict";

(() => {
  const root = document.getElementById("sidebar");
  if (!root) return;

  const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const FALLBACK_COLORS = {
    angry: "#d55e00", disgust: "#009e73", fear: "#cc79a7", happy: "#e69f00",
    sad: "#0072b2", surprise: "#56b4e9", neutral: "#9aa5b1",
  };
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 15000;
  const GOOD_CONNECTION_MS = 5000; // a connection that lasted this long resets the backoff
  const OFFLINE_AFTER_FAILURES = 3;
  const TICK_MS = 500; // timeline + "updated … ago" refresh: at most 2x per second
  const AXIS_H = 14; // css px under the plot for the time labels
  const PLOT_H = 48; // css px

  const meetingId = root.dataset.meetingId || "";
  const hostToken = root.dataset.hostToken || "";
  let historySecs = Number(root.dataset.historySecs) || 300;

  const cardsEl = document.getElementById("cards");
  const emptyEl = document.getElementById("empty");
  const countEl = document.getElementById("people-count");
  const connEl = document.getElementById("conn");
  const connText = document.getElementById("conn-text");
  const announcer = document.getElementById("announcer");
  const titleEl = document.getElementById("sb-meeting-name");

  const css = getComputedStyle(document.documentElement);
  const COLORS = {};
  for (const e of EMOTIONS) {
    COLORS[e] = (css.getPropertyValue(`--emo-${e}`) || "").trim() || FALLBACK_COLORS[e];
  }
  const AXIS_COLOR = (css.getPropertyValue("--muted") || "").trim() || "#57606a";
  const GRID_COLOR = "rgba(0, 0, 0, 0.12)";

  // participant_id -> {info: P (without state), state: S|null, history: [{ts, face, probs[7]|null}], card}
  const people = new Map();
  let clockOffset = 0; // server clock minus client clock, seconds

  // Exposed for tests.
  const exposed = { socketState: "connecting", participants: {} };
  window.sidebar = exposed;

  const serverNow = () => Date.now() / 1000 + clockOffset;

  // ---------- small DOM helpers ----------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function pct(p) {
    if (typeof p !== "number" || !isFinite(p)) return "—";
    return `${Math.round(Math.max(0, Math.min(1, p)) * 100)}%`;
  }

  function clockTime(serverTs) {
    const d = new Date((serverTs - clockOffset) * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function ago(secs) {
    if (secs < 1.5) return "updated just now";
    if (secs < 90) return `updated ${Math.round(secs)} s ago`;
    if (secs < 5400) return `updated ${Math.round(secs / 60)} min ago`;
    return `updated ${Math.round(secs / 3600)} h ago`;
  }

  function probsArray(probs) {
    if (!probs || typeof probs !== "object") return null;
    const arr = EMOTIONS.map((e) => {
      const v = Number(probs[e]);
      return isFinite(v) && v > 0 ? v : 0;
    });
    const sum = arr.reduce((a, b) => a + b, 0);
    if (!(sum > 0)) return null;
    return arr.map((v) => v / sum);
  }

  // ---------- legend ----------
  function buildLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    for (const e of EMOTIONS) {
      const li = el("li", "legend-item");
      const sw = el("span", "swatch");
      sw.style.background = COLORS[e];
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, el("span", null, e));
      legend.append(li);
    }
    const li = el("li", "legend-item");
    const sw = el("span", "swatch swatch-noface");
    sw.setAttribute("aria-hidden", "true");
    li.append(sw, el("span", null, "no face"));
    legend.append(li);
  }

  // ---------- participant records ----------
  function publish(p) {
    // window.sidebar.participants[id]: the participant record (P, with .state = last S) and,
    // for convenience, the last state's fields flattened on top (face_visible, emotion, …).
    const rec = Object.assign({}, p.info, { state: p.state });
    if (p.state) Object.assign(rec, p.state);
    exposed.participants[p.info.participant_id] = rec;
  }

  function upsertParticipant(info) {
    const id = String(info.participant_id);
    let p = people.get(id);
    const clean = {
      participant_id: id,
      display_name: typeof info.display_name === "string" ? info.display_name : "",
      joined_at: Number(info.joined_at) || serverNow(),
      left_at: info.left_at == null ? null : Number(info.left_at),
      leave_reason: info.leave_reason == null ? null : String(info.leave_reason),
    };
    if (!p) {
      p = { info: clean, state: null, history: [], card: null, dirty: true };
      people.set(id, p);
    } else {
      p.info = clean;
      p.dirty = true;
    }
    if (info.state) applyState(p, info.state, false);
    publish(p);
    return p;
  }

  function trimHistory(p, now) {
    const cutoff = now - historySecs - 30; // keep a little before the window for coverage
    const h = p.history;
    let i = 0;
    while (i < h.length && h[i].ts < cutoff) i++;
    if (i > 0) h.splice(0, i);
    if (h.length > 50000) h.splice(0, h.length - 50000);
  }

  function addHistoryPoint(p, ts, face, probs) {
    const h = p.history;
    if (h.length && ts <= h[h.length - 1].ts) return;
    h.push({ ts, face: !!face, probs: face ? probs : null });
  }

  function applyState(p, s, addToHistory) {
    const ts = Number(s.ts);
    if (!isFinite(ts)) return;
    if (p.state && ts < p.state.ts) return; // out of order
    p.state = s;
    p.dirty = true;
    if (addToHistory) {
      addHistoryPoint(p, ts, s.face_visible, s.emotion ? probsArray(s.emotion.probs) : null);
      trimHistory(p, serverNow());
    }
  }

  // ---------- cards ----------
  function buildCard(p) {
    const card = el("article", "participant-card");
    card.dataset.participantId = p.info.participant_id;

    const head = el("header", "card-head");
    const name = el("h3", "p-name");
    const badges = el("span", "badges");
    const stale = el("span", "badge badge-stale", "stale");
    stale.title = "Analysis for this person is failing or behind; values may be old.";
    stale.hidden = true;
    const speaking = el("span", "badge badge-speaking", "speaking");
    speaking.hidden = true;
    badges.append(speaking, stale);
    head.append(name, badges);

    const meta = el("div", "card-meta");
    const face = el("span", "face-indicator");
    const faceIcon = el("span", "face-icon");
    faceIcon.setAttribute("aria-hidden", "true");
    const faceText = el("span", "face-text");
    face.append(faceIcon, faceText);
    const updated = el("span", "updated");
    meta.append(face, updated);

    const leftNote = el("p", "left-note");
    leftNote.hidden = true;

    const dominant = el("p", "dominant-emotion");

    const bars = el("ul", "bars");
    const barRefs = {};
    for (const e of EMOTIONS) {
      const li = el("li", "bar-row");
      li.dataset.emotion = e;
      const label = el("span", "bar-label", e);
      const track = el("span", "bar-track");
      track.setAttribute("aria-hidden", "true");
      const fill = el("span", "bar-fill");
      fill.style.background = COLORS[e];
      track.append(fill);
      const value = el("span", "bar-pct", "—");
      li.append(label, track, value);
      bars.append(li);
      barRefs[e] = { li, fill, value };
    }

    const extra = el("p", "card-extra");
    const engagement = el("span", "engagement");

    extra.append(engagement);

    const tl = el("div", "timeline-wrap");
    const canvas = el("canvas", "timeline");
    canvas.setAttribute("role", "img");
    canvas.style.height = `${PLOT_H + AXIS_H}px`;
    tl.append(canvas);

    card.append(head, leftNote, meta, dominant, bars, tl, extra);
    p.card = { card, name, stale, speaking, face, faceText, updated, leftNote, dominant, bars,
               barRefs, engagement, canvas };
    p.dirty = true;
    return p.card;
  }

  function renderCard(p) {
    if (!p.card) buildCard(p);
    const c = p.card;
    const s = p.state;
    const info = p.info;
    const displayName = info.display_name || "(no name)";
    c.name.textContent = displayName;
    c.card.setAttribute("aria-label", displayName);
    c.canvas.setAttribute("aria-label",
      `Expression timeline for ${displayName}, last ${Math.round(historySecs / 60)} minutes`);

    const left = info.left_at != null;
    c.card.classList.toggle("is-left", left);
    c.leftNote.hidden = !left;
    if (left) {
      const reason = info.leave_reason && info.leave_reason !== "left" ?
        ` (${info.leave_reason.replace(/_/g, " ")})` : "";
      c.leftNote.textContent = `left at ${clockTime(info.left_at)}${reason}`;
    }

    c.stale.hidden = !(s && s.stale);
    c.speaking.hidden = !(s && s.is_speaking === true);

    const faceVisible = !!(s && s.face_visible);
    c.face.dataset.faceVisible = faceVisible ? "true" : "false";
    c.faceText.textContent = !s ? "waiting" : faceVisible ? "face visible" : "no face";
    c.card.classList.toggle("no-face", !!s && !faceVisible);

    const emotion = s && faceVisible ? s.emotion : null;
    const probs = emotion && emotion.probs ? emotion.probs : null;
    if (!s) {
      c.dominant.textContent = "Waiting for the first analysis…";
    } else if (!faceVisible) {
      c.dominant.textContent = "No face in view";
    } else if (!emotion) {
      c.dominant.textContent = "Face visible, no reading yet";
    } else {
      const dom = String(emotion.dominant || "");
      const p = probs && typeof probs[dom] === "number" ? probs[dom] : emotion.confidence;
      c.dominant.textContent = "";
      const label = el("span", "dominant-label", dom || "—");
      const value = el("span", "dominant-pct", pct(p));
      c.dominant.append(label, " ", value);
    }
    c.dominant.dataset.emotion = emotion ? String(emotion.dominant || "") : "";
    c.bars.classList.toggle("is-empty", !probs);
    for (const e of EMOTIONS) {
      const ref = c.barRefs[e];
      const v = probs ? Number(probs[e]) : NaN;
      const ok = isFinite(v);
      ref.fill.style.width = ok ? `${Math.max(0, Math.min(1, v)) * 100}%` : "0";
      ref.value.textContent = ok ? pct(v) : "—";
      ref.li.classList.toggle("is-dominant", !!emotion && emotion.dominant === e);
    }

    const eng = s ? s.engagement : null;
    // Nothing measures engagement yet: show the line only once a value exists.
    const hasEng = typeof eng === "number" && isFinite(eng);
    c.engagement.hidden = !hasEng;
    c.engagement.textContent = hasEng ? `Engagement ${pct(eng)}` : "";

    updateAge(p);
    p.dirty = false;
  }

  function updateAge(p) {
    const c = p.card;
    if (!c) return;
    if (!p.state) { c.updated.textContent = "no update yet"; return; }
    c.updated.textContent = ago(Math.max(0, serverNow() - Number(p.state.ts)));
  }

  function sortedPeople() {
    const list = Array.from(people.values());
    list.sort((a, b) => {
      const al = a.info.left_at != null, bl = b.info.left_at != null;
      if (al !== bl) return al ? 1 : -1;
      if (al) return b.info.left_at - a.info.left_at; // most recently left first
      return a.info.joined_at - b.info.joined_at || a.info.participant_id.localeCompare(b.info.participant_id);
    });
    return list;
  }

  function layout() {
    const list = sortedPeople();
    for (const p of list) if (p.dirty || !p.card) renderCard(p);
    // Reorder only where needed.
    let prev = null;
    for (const p of list) {
      const node = p.card.card;
      const expected = prev ? prev.nextSibling : cardsEl.firstChild;
      if (node !== expected) cardsEl.insertBefore(node, expected);
      prev = node;
    }
    // Remove cards of participants no longer known (after a snapshot).
    const live = new Set(list.map((p) => p.card.card));
    for (const node of Array.from(cardsEl.children)) {
      if (!live.has(node)) node.remove();
    }
    const present = list.filter((p) => p.info.left_at == null).length;
    const left = list.length - present;
    emptyEl.hidden = list.length > 0;
    countEl.textContent = list.length ? `${present} present${left ? ` · ${left} left` : ""}` : "";
    // Timelines are redrawn by the periodic tick (at most 2x/s); draw only new ones here.
    for (const p of list) if (!p.drawn) drawTimeline(p);
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      let needLayout = false;
      for (const p of people.values()) if (p.dirty || !p.card) { needLayout = true; break; }
      if (needLayout || cardsEl.children.length !== people.size) layout();
    });
  }

  // ---------- timeline ----------
  let hatch = null;
  let hatchDpr = 0;
  function hatchPattern(ctx, dpr) {
    if (hatch && hatchDpr === dpr) return hatch;
    const size = Math.max(4, Math.round(6 * dpr));
    const off = document.createElement("canvas");
    off.width = size;
    off.height = size;
    const o = off.getContext("2d");
    o.fillStyle = "#eef0f3";
    o.fillRect(0, 0, size, size);
    o.strokeStyle = "#b4bac2";
    o.lineWidth = Math.max(1, dpr);
    o.beginPath();
    o.moveTo(0, size); o.lineTo(size, 0);
    o.moveTo(-size / 2, size / 2); o.lineTo(size / 2, -size / 2);
    o.moveTo(size / 2, size * 1.5); o.lineTo(size * 1.5, size / 2);
    o.stroke();
    hatch = ctx.createPattern(off, "repeat");
    hatchDpr = dpr;
    return hatch;
  }

  function tickStep(win) {
    if (win >= 1800) return 600;
    if (win >= 600) return 120;
    if (win >= 180) return 60;
    if (win >= 60) return 15;
    return 5;
  }

  function tickLabel(secsAgo) {
    if (secsAgo === 0) return "now";
    if (secsAgo % 60 === 0) return `-${secsAgo / 60}m`;
    return `-${secsAgo}s`;
  }

  function nominalStep(h) {
    const n = h.length;
    if (n < 2) return 1;
    const diffs = [];
    for (let i = Math.max(1, n - 40); i < n; i++) diffs.push(h[i].ts - h[i - 1].ts);
    diffs.sort((a, b) => a - b);
    return Math.max(0.05, Math.min(10, diffs[diffs.length >> 1]));
  }

  function drawTimeline(p) {
    if (!p.card) return;
    const canvas = p.card.canvas;
    const cssW = canvas.clientWidth;
    if (!cssW) return; // not laid out (hidden)
    p.drawn = true;
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(1, Math.round(cssW * dpr));
    const Htot = Math.max(1, Math.round((PLOT_H + AXIS_H) * dpr));
    if (canvas.width !== W) canvas.width = W;
    if (canvas.height !== Htot) canvas.height = Htot;
    const ctx = canvas.getContext("2d");
    const H = Math.round(PLOT_H * dpr);
    ctx.clearRect(0, 0, W, Htot);

    const now = serverNow();
    const win = historySecs;
    const start = now - win;
    const binDur = win / W;
    const h = p.history;
    const step = nominalStep(h);
    const gapMax = Math.max(2.5, 3 * step);
    const endCap = p.info.left_at != null ? Math.min(now, p.info.left_at) : now;

    // Time-weighted accumulation of each point's coverage [ts, next ts) into device-pixel bins.
    const acc = new Float32Array(W * 7);
    const wFace = new Float32Array(W);
    const wNo = new Float32Array(W);
    for (let i = 0; i < h.length; i++) {
      const pt = h[i];
      let a = pt.ts;
      let b = i + 1 < h.length ? Math.min(h[i + 1].ts, a + gapMax) : Math.min(endCap, a + gapMax);
      if (b <= start || a >= now) continue;
      a = Math.max(a, start);
      b = Math.min(b, now);
      if (b <= a) continue;
      const k0 = Math.max(0, Math.floor((a - start) / binDur));
      const k1 = Math.min(W - 1, Math.floor((b - start) / binDur - 1e-9));
      for (let k = k0; k <= k1; k++) {
        const bs = start + k * binDur;
        const ov = Math.min(b, bs + binDur) - Math.max(a, bs);
        if (ov <= 0) continue;
        if (pt.face && pt.probs) {
          wFace[k] += ov;
          for (let j = 0; j < 7; j++) acc[k * 7 + j] += ov * pt.probs[j];
        } else {
          wNo[k] += ov;
        }
      }
    }

    // Plot background.
    ctx.fillStyle = "#f7f8fa";
    ctx.fillRect(0, 0, W, H);

    // No-face runs: hatched grey.
    ctx.fillStyle = hatchPattern(ctx, dpr);
    let runStart = -1;
    for (let k = 0; k <= W; k++) {
      const isNo = k < W && wNo[k] > 0 && wNo[k] >= wFace[k];
      if (isNo && runStart < 0) runStart = k;
      if (!isNo && runStart >= 0) { ctx.fillRect(runStart, 0, k - runStart, H); runStart = -1; }
    }

    // Face runs: stacked areas, drawn top layer first from the baseline so no seams show.
    const isFace = (k) => wFace[k] > 0 && wFace[k] > wNo[k];
    let k = 0;
    while (k < W) {
      if (!isFace(k)) { k++; continue; }
      let e = k;
      while (e + 1 < W && isFace(e + 1)) e++;
      for (let j = 6; j >= 0; j--) {
        ctx.beginPath();
        ctx.moveTo(k, H);
        for (let x = k; x <= e; x++) {
          let cum = 0;
          for (let q = 0; q <= j; q++) cum += acc[x * 7 + q];
          const y = H - (cum / wFace[x]) * H;
          ctx.lineTo(x, y);
          ctx.lineTo(x + 1, y);
        }
        ctx.lineTo(e + 1, H);
        ctx.closePath();
        ctx.fillStyle = COLORS[EMOTIONS[j]];
        ctx.fill();
      }
      k = e + 1;
    }

    // Axis: grid lines and "-5m … now" labels.
    const tick = tickStep(win);
    ctx.font = `${10 * dpr}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
    ctx.textBaseline = "top";
    for (let t = 0; t <= win + 1e-6; t += tick) {
      const x = Math.round(W - (t / win) * W);
      ctx.fillStyle = GRID_COLOR;
      ctx.fillRect(Math.min(W - 1, x), 0, Math.max(1, Math.round(dpr)), H);
      const label = tickLabel(Math.round(t));
      ctx.fillStyle = AXIS_COLOR;
      ctx.textAlign = t === 0 ? "right" : x <= 1 ? "left" : "center";
      ctx.fillText(label, t === 0 ? W : x, H + 2 * dpr);
    }
  }

  // ---------- periodic tick ----------
  setInterval(() => {
    if (document.hidden) return;
    const now = serverNow();
    for (const p of people.values()) {
      trimHistory(p, now);
      updateAge(p);
      drawTimeline(p);
    }
  }, TICK_MS);

  window.addEventListener("resize", () => {
    for (const p of people.values()) drawTimeline(p);
  });

  // ---------- messages ----------
  function handleSnapshot(msg) {
    if (typeof msg.server_ts === "number") clockOffset = msg.server_ts - Date.now() / 1000;
    if (Number(msg.history_secs) > 0) historySecs = Number(msg.history_secs);
    if (msg.meeting && typeof msg.meeting.name === "string") {
      titleEl.textContent = msg.meeting.name;
      document.title = `${msg.meeting.name} · meetmood sidebar`;
    }
    const oldCards = new Map();
    for (const [id, p] of people) if (p.card) oldCards.set(id, p.card);
    people.clear();
    exposed.participants = {};
    for (const info of Array.isArray(msg.participants) ? msg.participants : []) {
      if (!info || info.participant_id == null) continue;
      const p = upsertParticipant(info);
      if (!p.card && oldCards.has(p.info.participant_id)) p.card = oldCards.get(p.info.participant_id);
      const hist = msg.history && msg.history[p.info.participant_id];
      if (Array.isArray(hist)) {
        for (const hp of hist) {
          const ts = Number(hp.ts);
          if (!isFinite(ts)) continue;
          addHistoryPoint(p, ts, hp.face_visible, hp.face_visible ? probsArray(hp.probs) : null);
        }
      }
      if (p.state) {
        addHistoryPoint(p, Number(p.state.ts), p.state.face_visible,
          p.state.emotion ? probsArray(p.state.emotion.probs) : null);
      }
      trimHistory(p, serverNow());
    }
    layout();
    for (const p of people.values()) drawTimeline(p);
  }

  function handleMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "snapshot":
        handleSnapshot(msg);
        return;
      case "participant_joined": {
        if (!msg.participant || msg.participant.participant_id == null) return;
        const p = upsertParticipant(msg.participant);
        announce(`${p.info.display_name || "Someone"} joined`);
        break;
      }
      case "participant_left": {
        const p = people.get(String(msg.participant_id));
        if (!p) return;
        p.info.left_at = Number(msg.ts) || serverNow();
        p.info.leave_reason = msg.reason == null ? null : String(msg.reason);
        p.dirty = true;
        publish(p);
        announce(`${p.info.display_name || "Someone"} left`);
        break;
      }
      case "participant_state": {
        const s = msg.state;
        if (!s || s.participant_id == null) return;
        const id = String(s.participant_id);
        let p = people.get(id);
        if (!p) {
          // State before the join event: keep it under a placeholder until the join arrives.
          p = upsertParticipant({ participant_id: id, display_name: "", joined_at: Number(s.ts) });
        }
        applyState(p, s, true);
        publish(p);
        break;
      }
      default:
        return; // unknown types are ignored
    }
    scheduleRender();
  }

  // ---------- WebSocket with backoff ----------
  let ws = null;
  let backoff = BACKOFF_MIN_MS;
  let failures = 0;
  let retryTimer = null;
  let retryAt = 0;

  function setConn(state, text) {
    exposed.socketState = state;
    connEl.dataset.conn = state;
    connText.textContent = text;
  }

  function wsUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/api/meetings/${encodeURIComponent(meetingId)}/ws` +
           `?token=${encodeURIComponent(hostToken)}`;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    let openedAt = 0;
    let gotSnapshot = false;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    if (exposed.socketState !== "offline") {
      setConn(failures ? "reconnecting" : "connecting", failures ? "Reconnecting…" : "Connecting…");
    }
    sock.addEventListener("open", () => {
      openedAt = Date.now();
    });
    sock.addEventListener("message", (ev) => {
      if (sock !== ws) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "snapshot") {
        gotSnapshot = true;
        failures = 0;
        setConn("live", "Live");
      }
      handleMessage(msg);
    });
    sock.addEventListener("close", () => {
      if (sock !== ws) return;
      ws = null;
      if (gotSnapshot && Date.now() - openedAt >= GOOD_CONNECTION_MS) backoff = BACKOFF_MIN_MS;
      scheduleReconnect();
    });
    sock.addEventListener("error", () => { /* a close event follows */ });
  }

  function scheduleReconnect() {
    failures += 1;
    const delay = backoff;
    backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    retryAt = Date.now() + delay;
    if (failures >= OFFLINE_AFTER_FAILURES || !navigator.onLine) {
      setConn("offline", `Offline — retrying in ${Math.ceil(delay / 1000)} s`);
    } else {
      setConn("reconnecting", "Reconnecting…");
    }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  // Keep the "retrying in N s" countdown honest.
  setInterval(() => {
    if (exposed.socketState === "offline" && retryTimer) {
      const secs = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      connText.textContent = secs > 0 ? `Offline — retrying in ${secs} s` : "Offline — retrying…";
    }
  }, 1000);

  window.addEventListener("online", () => {
    if (!ws) { backoff = BACKOFF_MIN_MS; connect(); }
  });
  window.addEventListener("offline", () => {
    if (exposed.socketState !== "live") setConn("offline", "Offline");
  });

  // ---------- copy join link ----------
  const copyBtn = document.getElementById("copy-join");
  const joinInput = document.getElementById("join-url");
  const copyStatus = document.getElementById("copy-status");
  let copyTimer = null;
  function copied(ok) {
    copyStatus.textContent = ok ? "Join link copied." : "Could not copy: select the link and copy it.";
    clearTimeout(copyTimer);
    copyTimer = setTimeout(() => { copyStatus.textContent = ""; }, 4000);
  }
  copyBtn.addEventListener("click", async () => {
    const text = joinInput.value;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        copied(true);
        return;
      }
    } catch (e) { /* fall back below */ }
    joinInput.focus();
    joinInput.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    copied(ok);
  });
  joinInput.addEventListener("focus", () => joinInput.select());

  buildLegend();
  layout();
  connect();
})();
