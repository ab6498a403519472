// sidebar.js: the host's live engagement sidebar. Keeps a WebSocket to
// /api/meetings/{id}/ws?token=… open (reconnecting with 1 s → 15 s backoff), rebuilds from each
// snapshot, and renders:
//  - meeting notices (deduplicated by code),
//  - a conversation strip: who is speaking now, a stacked talk-share bar, meeting figures,
//  - one card per participant (faces of a room camera grouped under the camera's card): face
//    indicator, dominant expression, seven probability bars, face readings (blinks, gaze, head
//    pose, smile), voice readings (talk time, arousal, voice emotion), a collapsible details list
//    and a canvas timeline of the last history_secs seconds.
// Server text only ever reaches the page through textContent / attributes, never innerHTML.
"use strict";

(() => {
  const root = document.getElementById("sidebar");
  if (!root) return;

  const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const FALLBACK_COLORS = {
    angry: "#d55e00", disgust: "#009e73", fear: "#cc79a7", happy: "#e69f00",
    sad: "#0072b2", surprise: "#56b4e9", neutral: "#9aa5b1",
  };
  // Talk-share colours per participant (Paul Tol's "muted" set) with a readable text colour.
  const PARTY_COLORS = [
    ["#332288", "#fff"], ["#88ccee", "#1f2328"], ["#117733", "#fff"], ["#ddcc77", "#1f2328"],
    ["#882255", "#fff"], ["#44aa99", "#1f2328"], ["#aa4499", "#fff"], ["#999933", "#1f2328"],
    ["#cc6677", "#1f2328"],
  ];
  const AU_NAMES = {
    AU01: "inner brow raiser", AU02: "outer brow raiser", AU04: "brow lowerer",
    AU06: "cheek raiser", AU12: "lip corner puller", AU15: "lip corner depressor",
    AU25: "lips part", AU26: "jaw drop",
  };
  const DASH = "—";
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 15000;
  const GOOD_CONNECTION_MS = 5000; // a connection that lasted this long resets the backoff
  const OFFLINE_AFTER_FAILURES = 3;
  const TICK_MS = 500; // timeline + "updated … ago" refresh: at most 2x per second
  const RENDER_MIN_MS = 500; // cards and strip re-render at most 2x per second
  const AXIS_H = 14; // css px under the plot for the time labels
  const PLOT_H = 48; // css px
  const HEAD_DIAL_DEG = 45; // head pose dial: the rim is this many degrees
  const SVG_NS = "http://www.w3.org/2000/svg";

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
  const noticesEl = document.getElementById("notices");
  const strip = {
    root: document.getElementById("talk-strip"),
    speaking: document.getElementById("speaking-now"),
    nobody: document.getElementById("speaking-none"),
    bar: document.getElementById("share-bar"),
    barEmpty: document.getElementById("share-empty"),
    legend: document.getElementById("share-legend"),
    duration: document.getElementById("talk-duration"),
    speech: document.getElementById("talk-speech"),
    silence: document.getElementById("talk-silence"),
    longSilences: document.getElementById("talk-long-silences"),
    overlap: document.getElementById("talk-overlap"),
    segments: new Map(), // participant_id -> {seg, li, sw, name, value}
    speakingKey: null,
  };

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
  let talk = null; // last talk event
  const talkById = new Map(); // participant_id -> that participant's entry of the last talk event
  const notices = new Map(); // code -> {code, text, node}
  const partyColorIndex = new Map(); // participant_id -> index into PARTY_COLORS
  let talkDirty = false;

  // Exposed for tests.
  const exposed = { socketState: "connecting", participants: {}, talk: null, notices: [] };
  window.sidebar = exposed;

  const serverNow = () => Date.now() / 1000 + clockOffset;

  // ---------- small DOM helpers ----------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // Writes only when the value changes, so a steady stream of states causes no DOM churn.
  function setText(node, text) {
    const t = text == null ? "" : String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setAttr(node, name, value) {
    if (value == null) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
      return;
    }
    const v = String(value);
    if (node.getAttribute(name) !== v) node.setAttribute(name, v);
  }

  function setData(node, key, value) {
    const v = String(value);
    if (node.dataset[key] !== v) node.dataset[key] = v;
  }

  function setHidden(node, hidden) {
    if (node.hidden !== !!hidden) node.hidden = !!hidden;
  }

  function setWidth(node, frac) {
    const w = `${(Math.max(0, Math.min(1, frac)) * 100).toFixed(1)}%`;
    if (node.style.width !== w) node.style.width = w;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  // ---------- formatting (every formatter returns "—" for a missing value) ----------
  const isNum = (v) => typeof v === "number" && isFinite(v);
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  function pct(p) {
    if (!isNum(p)) return DASH;
    return `${Math.round(clamp(p, 0, 1) * 100)}%`;
  }

  function signed(v, digits) {
    if (!isNum(v)) return DASH;
    const s = Math.abs(v).toFixed(digits);
    if (Number(s) === 0) return (0).toFixed(digits);
    return `${v < 0 ? "−" : "+"}${s}`;
  }

  function deg(v) {
    if (!isNum(v)) return DASH;
    const r = Math.round(v);
    return `${r < 0 ? "−" : ""}${Math.abs(r)}°`;
  }

  function num(v, digits) {
    if (!isNum(v)) return DASH;
    const s = Math.abs(v).toFixed(digits);
    return `${v < 0 && Number(s) !== 0 ? "−" : ""}${s}`;
  }

  function duration(secs) {
    if (!isNum(secs) || secs < 0) return DASH;
    const t = Math.floor(secs);
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const s = String(t % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
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

  // Present classes only, most probable first (voice emotion may cover a subset of the seven).
  function presentProbs(probs) {
    if (!probs || typeof probs !== "object") return [];
    return Object.entries(probs)
      .filter(([, v]) => isNum(v))
      .sort((a, b) => b[1] - a[1]);
  }

  function partyColor(id) {
    if (!partyColorIndex.has(id)) partyColorIndex.set(id, partyColorIndex.size % PARTY_COLORS.length);
    return PARTY_COLORS[partyColorIndex.get(id)];
  }

  function nameOf(id) {
    const p = people.get(id);
    return (p && p.info.display_name) || "(no name)";
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
    // for convenience, the last state's fields flattened on top (face_visible, emotion, face,
    // voice, …).
    const rec = Object.assign({}, p.info, { state: p.state });
    if (p.state) Object.assign(rec, p.state);
    exposed.participants[p.info.participant_id] = rec;
  }

  function upsertParticipant(info) {
    const id = String(info.participant_id);
    let p = people.get(id);
    const track = Number(info.face_track);
    const clean = {
      participant_id: id,
      display_name: typeof info.display_name === "string" ? info.display_name : "",
      joined_at: Number(info.joined_at) || serverNow(),
      left_at: info.left_at == null ? null : Number(info.left_at),
      leave_reason: info.leave_reason == null ? null : String(info.leave_reason),
      parent_id: info.parent_id == null || info.parent_id === "" ? null : String(info.parent_id),
      face_track: info.face_track == null || !isFinite(track) ? null : track,
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
  // A reading tile: small label above, value below. Returns {tile, value}.
  function tile(field, label, wide) {
    const t = el("div", wide ? "reading reading-wide" : "reading");
    t.dataset.field = field;
    const l = el("span", "r-label", label);
    const v = el("span", "r-value", DASH);
    t.append(l, v);
    return { tile: t, label: l, value: v };
  }

  // A horizontal meter (role=meter). centred: the fill grows from the middle (for -1..1).
  function meter(label, min, max, centred) {
    const m = el("span", centred ? "meter meter-centred" : "meter");
    m.setAttribute("role", "meter");
    m.setAttribute("aria-label", label);
    m.setAttribute("aria-valuemin", String(min));
    m.setAttribute("aria-valuemax", String(max));
    const fill = el("span", "meter-fill");
    m.append(fill);
    if (centred) m.append(el("span", "meter-mid"));
    return { meter: m, fill };
  }

  function buildHeadDial() {
    const s = svg("svg", { viewBox: "-10 -10 20 20", width: 18, height: 18, class: "head-dial" });
    s.setAttribute("aria-hidden", "true");
    s.append(
      svg("circle", { cx: 0, cy: 0, r: 9, class: "dial-rim" }),
      svg("line", { x1: -9, y1: 0, x2: 9, y2: 0, class: "dial-cross" }),
      svg("line", { x1: 0, y1: -9, x2: 0, y2: 9, class: "dial-cross" }),
    );
    const head = svg("g", { class: "dial-head" });
    head.append(
      svg("line", { x1: -4, y1: 0, x2: 4, y2: 0, class: "dial-eyes" }),
      svg("circle", { cx: 0, cy: 0, r: 2.2, class: "dial-dot" }),
    );
    s.append(head);
    return { svg: s, head };
  }

  function buildCard(p) {
    const card = el("article", "participant-card");
    card.dataset.participantId = p.info.participant_id;

    const head = el("header", "card-head");
    const swatch = el("span", "p-swatch");
    swatch.setAttribute("aria-hidden", "true");
    const subMark = el("span", "sub-mark", "↳");
    subMark.setAttribute("aria-hidden", "true");
    const name = el("h3", "p-name");
    const badges = el("span", "badges");
    const stale = el("span", "badge badge-stale", "stale");
    stale.title = "Analysis for this person is failing or behind; values may be old.";
    stale.hidden = true;
    const speaking = el("span", "badge badge-speaking", "speaking");
    speaking.hidden = true;
    badges.append(speaking, stale);
    head.append(subMark, swatch, name, badges);

    const meta = el("div", "card-meta");
    const faceWrap = el("span", "face-wrap");
    const face = el("span", "face-indicator");
    const faceIcon = el("span", "face-icon");
    faceIcon.setAttribute("aria-hidden", "true");
    const faceText = el("span", "face-text");
    face.append(faceIcon, faceText);
    const calib = el("span", "calib", "calibrating…");
    calib.dataset.field = "calibration";
    calib.title = "Learning this person's neutral face; smile and action units follow.";
    calib.hidden = true;
    faceWrap.append(face, calib);
    const updated = el("span", "updated");
    meta.append(faceWrap, updated);

    const subNote = el("p", "sub-note");
    subNote.hidden = true;

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
      const value = el("span", "bar-pct", DASH);
      li.append(label, track, value);
      bars.append(li);
      barRefs[e] = { li, fill, value };
    }

    // Face readings.
    const readings = el("div", "readings");
    const faceGroup = el("div", "reading-group");
    faceGroup.setAttribute("role", "group");
    faceGroup.setAttribute("aria-label", "Face readings");

    const blink = tile("blink-rate", "Blink rate");
    blink.value.remove();
    const blinkRow = el("span", "r-value");
    const blinkNum = el("span", "blink-num", DASH);
    const blinkWhy = el("span", "r-sub");
    blinkRow.append(blinkNum, blinkWhy);
    blink.tile.append(blinkRow);

    const gaze = tile("gaze", "Gaze · time away");
    gaze.value.remove();
    const gazeRow = el("span", "r-value");
    const away = el("span", "away-badge", DASH);
    away.dataset.field = "looking-away";
    away.dataset.lookingAway = "unknown";
    const awayPct = el("span", "r-sub");
    awayPct.dataset.field = "percent-away";
    gazeRow.append(away, awayPct);
    gaze.tile.append(gazeRow);

    const pose = tile("head-pose", "Head · pitch/yaw/roll");
    pose.label.title = "Head pose in degrees (pitch + = looking down)";
    pose.value.remove();
    const poseRow = el("span", "r-value");
    const dial = buildHeadDial();
    const poseText = el("span", "pose-text", DASH);
    poseRow.append(dial.svg, poseText);
    pose.tile.append(poseRow);

    const smile = tile("smile", "Smile (0–5)");
    smile.tile.dataset.smiling = "unknown";
    smile.value.remove();
    const smileRow = el("span", "r-value");
    const smileMeter = meter("Smile intensity, 0 to 5", 0, 5, false);
    const smileNum = el("span", "smile-num", DASH);
    const smileState = el("span", "smile-state");
    smileRow.append(smileMeter.meter, smileNum, smileState);
    smile.tile.append(smileRow);

    faceGroup.append(blink.tile, gaze.tile, pose.tile, smile.tile);

    // Voice readings.
    const voiceGroup = el("div", "reading-group");
    voiceGroup.setAttribute("role", "group");
    voiceGroup.setAttribute("aria-label", "Voice readings");

    const talkT = tile("talk-time", "Talk time · share");
    talkT.value.remove();
    const talkRow = el("span", "r-value");
    const talkTime = el("span", "talk-secs", DASH);
    const talkShare = el("span", "r-sub");
    talkRow.append(talkTime, talkShare);
    talkT.tile.append(talkRow);

    const arousal = tile("arousal", "Arousal (vs. usual)");
    arousal.value.remove();
    const arousalRow = el("span", "r-value");
    const arousalMeter = meter("Vocal arousal against this speaker's usual, −1 to +1", -1, 1, true);
    const arousalText = el("span", "arousal-num", DASH);
    arousalRow.append(arousalMeter.meter, arousalText);
    arousal.tile.append(arousalRow);

    const vemo = tile("voice-emotion", "Voice emotion", true);
    vemo.tile.dataset.status = "none";
    vemo.value.remove();
    const vemoRow = el("span", "r-value");
    const vemoMain = el("span", "vemo-main", DASH);
    const vemoRest = el("span", "r-sub vemo-rest");
    vemoRow.append(vemoMain, vemoRest);
    vemo.tile.append(vemoRow);

    voiceGroup.append(talkT.tile, arousal.tile, vemo.tile);
    readings.append(faceGroup, voiceGroup);

    // Details: action units, window features and the rest, filled only while open.
    const details = el("details", "more");
    const summary = el("summary", null, "Details: action units, window, voice");
    const detailsBody = el("div", "more-body");
    details.append(summary, detailsBody);
    details.addEventListener("toggle", () => {
      if (details.open) renderDetails(p);
    });

    const extra = el("p", "card-extra");
    const engagement = el("span", "engagement");

    extra.append(engagement);

    const tl = el("div", "timeline-wrap");
    const canvas = el("canvas", "timeline");
    canvas.setAttribute("role", "img");
    canvas.style.height = `${PLOT_H + AXIS_H}px`;
    tl.append(canvas);

    card.append(head, subNote, leftNote, meta, dominant, bars, readings, tl, details, extra);
    p.card = {
      card, name, swatch, stale, speaking, face, faceText, calib, updated, subNote, leftNote,
      dominant, bars, barRefs, engagement, canvas, voiceGroup,
      blinkNum, blinkWhy, blinkTile: blink.tile,
      away, awayPct, poseTile: pose.tile, dialHead: dial.head, poseText,
      smileTile: smile.tile, smileMeter, smileNum, smileState,
      talkTile: talkT.tile, talkTime, talkShare,
      arousalTile: arousal.tile, arousalMeter, arousalText,
      vemoTile: vemo.tile, vemoMain, vemoRest,
      details, detailsBody,
    };
    p.dirty = true;
    return p.card;
  }

  function renderCard(p) {
    if (!p.card) buildCard(p);
    const c = p.card;
    const s = p.state;
    const info = p.info;
    const displayName = info.display_name || "(no name)";
    const parent = info.parent_id ? people.get(info.parent_id) : null;
    setText(c.name, displayName);
    setAttr(c.card, "aria-label",
      parent ? `${displayName}, a face on the camera of ${parent.info.display_name || "(no name)"}` :
        displayName);
    setAttr(c.canvas, "aria-label",
      `Expression timeline for ${displayName}, last ${Math.round(historySecs / 60)} minutes`);
    const inTalk = talkById.has(info.participant_id);
    setHidden(c.swatch, !inTalk);
    if (inTalk) {
      const [bg] = partyColor(info.participant_id);
      if (c.swatch.style.background !== bg) c.swatch.style.background = bg;
    }

    // Faces of a room camera: attached to the camera's card.
    const isSub = !!info.parent_id;
    c.card.classList.toggle("is-sub", isSub);
    if (isSub) setData(c.card, "parentId", info.parent_id);
    else if ("parentId" in c.card.dataset) delete c.card.dataset.parentId;
    // Say whose camera the face is from, unless the name already does ("Room A · face 2").
    const parentName = parent ? parent.info.display_name : "";
    const noteNeeded = isSub && !(parentName && displayName.includes(parentName));
    setHidden(c.subNote, !noteNeeded);
    if (noteNeeded) {
      const trackText = info.face_track != null ? `face ${info.face_track} of ` : "a face of ";
      setText(c.subNote, `${trackText}${parentName || "a room camera"}`);
    }

    const left = info.left_at != null;
    c.card.classList.toggle("is-left", left);
    setHidden(c.leftNote, !left);
    if (left) {
      const reason = info.leave_reason && info.leave_reason !== "left" ?
        ` (${info.leave_reason.replace(/_/g, " ")})` : "";
      setText(c.leftNote, `left at ${clockTime(info.left_at)}${reason}`);
    }

    setHidden(c.stale, !(s && s.stale));
    setHidden(c.speaking, !(s && s.is_speaking === true));

    const faceVisible = !!(s && s.face_visible);
    setData(c.face, "faceVisible", faceVisible ? "true" : "false");
    setText(c.faceText, !s ? "waiting" : faceVisible ? "face visible" : "no face");
    c.card.classList.toggle("no-face", !!s && !faceVisible);

    const emotion = s && faceVisible ? s.emotion : null;
    const probs = emotion && emotion.probs ? emotion.probs : null;
    if (!s || !faceVisible || !emotion) {
      const text = !s ? "Waiting for the first analysis…" :
        !faceVisible ? "No face in view" : "Face visible, no reading yet";
      if (c.domKey !== text) c.dominant.textContent = text;
      c.domKey = text;
    } else {
      const dom = String(emotion.dominant || "");
      const pd = probs && typeof probs[dom] === "number" ? probs[dom] : emotion.confidence;
      const key = `\u0000${dom}\u0000${pct(pd)}`;
      if (c.domKey !== key) {
        c.dominant.replaceChildren(
          el("span", "dominant-src", "Face"), " ",
          el("span", "dominant-label", dom || DASH), " ",
          el("span", "dominant-pct", pct(pd)));
      }
      c.domKey = key;
    }
    setData(c.dominant, "emotion", emotion ? String(emotion.dominant || "") : "");
    c.bars.classList.toggle("is-empty", !probs);
    for (const e of EMOTIONS) {
      const ref = c.barRefs[e];
      const v = probs ? Number(probs[e]) : NaN;
      const ok = isFinite(v);
      setWidth(ref.fill, ok ? v : 0);
      setText(ref.value, ok ? pct(v) : DASH);
      ref.li.classList.toggle("is-dominant", !!emotion && emotion.dominant === e);
    }

    renderFace(p);
    renderVoice(p);
    if (c.details.open) renderDetails(p);

    const eng = s ? s.engagement : null;
    // Nothing measures engagement yet: show the line only once a value exists.
    const hasEng = isNum(eng);
    setHidden(c.engagement, !hasEng);
    setText(c.engagement, hasEng ? `Engagement ${pct(eng)}` : "");

    updateAge(p);
    p.dirty = false;
  }

  // Landmark readings: state.face (null without a face or with the Haar detector).
  function renderFace(p) {
    const c = p.card;
    const s = p.state;
    const f = s && s.face && typeof s.face === "object" ? s.face : null;
    const calibrating = !!f && f.calibrated === false;
    setHidden(c.calib, !calibrating);
    c.card.classList.toggle("no-landmarks", !f);

    // Blink rate.
    const rate = f ? f.blink_rate_per_min : null;
    setText(c.blinkNum, isNum(rate) ? `${Math.round(rate)}/min` : DASH);
    // The running count moves on every blink event, so a blink shows at once.
    const count = f && isNum(f.blinks) && f.blinks > 0 ? plural(f.blinks, "blink", "blinks") : "";
    setText(c.blinkWhy, !f ? "" : isNum(rate) ? (count ? `· ${count}` : "")
      : count ? `rate not measurable yet · ${count}` : "not measurable yet");
    setAttr(c.blinkTile, "title", f && !isNum(rate) ?
      "Needs a higher frame rate or more time with the face in view." :
      f && isNum(f.blinks) ? `${plural(f.blinks, "blink", "blinks")} counted` : null);

    // Gaze: looking away.
    const away = f ? f.looking_away : null;
    const awayState = away === true ? "true" : away === false ? "false" : "unknown";
    setData(c.away, "lookingAway", awayState);
    setText(c.away, away === true ? "looking away" : away === false ? "not away" : DASH);
    const w = f && f.window && typeof f.window === "object" ? f.window : null;
    const pa = w ? w.percent_away : null;
    const paText = isNum(pa) ? `${Math.round(clamp(pa, 0, 100))}%` : "";
    setText(c.awayPct, paText);
    const paSpan = w && isNum(w.window_secs) ? `the last ${Math.round(w.window_secs)} s` : "the time";
    setAttr(c.awayPct, "title", isNum(pa) ? `looking away ${paText} of ${paSpan}` : null);

    // Head pose.
    const pitch = f ? f.head_pitch : null;
    const yaw = f ? f.head_yaw : null;
    const roll = f ? f.head_roll : null;
    const anyPose = isNum(pitch) || isNum(yaw) || isNum(roll);
    setText(c.poseText, anyPose ? `${deg(pitch)} / ${deg(yaw)} / ${deg(roll)}` : DASH);
    setAttr(c.poseTile, "title", anyPose ?
      `Head pitch ${deg(pitch)}${isNum(pitch) ? (pitch > 0 ? " (down)" : pitch < 0 ? " (up)" : "") : ""},` +
      ` yaw ${deg(yaw)}, roll ${deg(roll)}` : "Head pose not measured");
    const x = isNum(yaw) ? clamp(yaw / HEAD_DIAL_DEG, -1, 1) * 7 : 0;
    const y = isNum(pitch) ? clamp(pitch / HEAD_DIAL_DEG, -1, 1) * 7 : 0;
    const r = isNum(roll) ? clamp(roll, -90, 90) : 0;
    setAttr(c.dialHead, "transform", `translate(${x.toFixed(1)} ${y.toFixed(1)}) rotate(${r.toFixed(0)})`);
    c.dialHead.classList.toggle("is-unknown", !anyPose);

    // Smile (AU12, relative to the neutral baseline).
    const sm = f ? f.smile : null;
    const smiling = f ? f.is_smiling : null;
    setData(c.smileTile, "smiling", smiling === true ? "true" : smiling === false ? "false" : "unknown");
    setWidth(c.smileMeter.fill, isNum(sm) ? sm / 5 : 0);
    setAttr(c.smileMeter.meter, "aria-valuenow", isNum(sm) ? clamp(sm, 0, 5).toFixed(1) : null);
    setText(c.smileNum, isNum(sm) ? num(clamp(sm, 0, 5), 1) : calibrating ? "" : DASH);
    let smileWord = "";
    if (smiling === true) smileWord = "smiling";
    else if (!isNum(sm) && calibrating) smileWord = "calibrating…";
    else if (smiling === false) smileWord = "not smiling";
    setText(c.smileState, smileWord);
  }

  // Voice readings: state.voice (null until an audio track is analysed) and the talk event.
  function renderVoice(p) {
    const c = p.card;
    const s = p.state;
    const v = s && s.voice && typeof s.voice === "object" ? s.voice : null;
    const t = talkById.get(p.info.participant_id) || null;
    // Sub-participants (faces of a room camera) share the camera's microphone: no voice rows.
    setHidden(c.voiceGroup, !!p.info.parent_id && !v && !t);

    // Talk time and share: the newer of the state and the talk event.
    const useTalk = t && (!v || (talk && isNum(talk.ts) && s && talk.ts >= Number(s.ts)));
    const src = useTalk ? t : v;
    const secs = src ? src.talk_secs : null;
    setText(c.talkTime, duration(secs));
    const bits = [];
    if (src) bits.push(pct(src.talk_share));
    if (src && isNum(src.turns)) bits.push(plural(src.turns, "turn", "turns"));
    setText(c.talkShare, bits.join(" · "));
    const interruptions = t && isNum(t.interruptions) ? t.interruptions : null;
    setAttr(c.talkTile, "title", interruptions != null ?
      `${plural(interruptions, "interruption", "interruptions")}` : null);

    // Arousal, -1..1 against the speaker's own baseline.
    const a = v ? v.arousal : null;
    const f = c.arousalMeter.fill;
    if (isNum(a)) {
      const aa = clamp(a, -1, 1);
      const left = `${(aa < 0 ? 50 + aa * 50 : 50).toFixed(1)}%`;
      if (f.style.left !== left) f.style.left = left;
      setWidth(f, Math.abs(aa) / 2);
      f.classList.toggle("is-neg", aa < 0);
      setAttr(c.arousalMeter.meter, "aria-valuenow", aa.toFixed(2));
      setAttr(c.arousalMeter.meter, "aria-valuetext",
        aa === 0 ? "as usual" : `${signed(aa, 2)}, ${aa > 0 ? "more" : "less"} activated than usual`);
    } else {
      setWidth(f, 0);
      setAttr(c.arousalMeter.meter, "aria-valuenow", null);
      setAttr(c.arousalMeter.meter, "aria-valuetext", v ? "learning voice" : "not measured");
    }
    setText(c.arousalText, isNum(a) ? signed(clamp(a, -1, 1), 2) : v ? "learning voice…" : DASH);
    c.arousalTile.classList.toggle("is-learning", !!v && !isNum(a));

    // Voice emotion: dominant + present classes, or why there is none.
    const status = v ? String(v.emotion_status || "none") : "none";
    setData(c.vemoTile, "status", status);
    const ve = v && v.emotion && typeof v.emotion === "object" ? v.emotion : null;
    const present = ve ? presentProbs(ve.probs) : [];
    let main = DASH;
    let rest = "";
    if (status === "unavailable") main = "voice emotion model unavailable";
    else if (status === "disabled") main = "voice emotion off";
    else if (status === "waiting" && !ve) main = "waiting for speech";
    else if (ve) {
      const dom = String(ve.dominant || (present[0] ? present[0][0] : ""));
      const pd = ve.probs && isNum(ve.probs[dom]) ? ve.probs[dom] : ve.confidence;
      main = `${dom || DASH} ${pct(pd)}`;
      rest = present.filter(([k]) => k !== dom).slice(0, 3)
        .map(([k, pv]) => `${k} ${pct(pv)}`).join(" · ");
    }
    setText(c.vemoMain, main);
    setText(c.vemoRest, rest);
    c.vemoTile.classList.toggle("is-note", status !== "ok" && status !== "none" && !ve);
  }

  function detailRow(dl, label, value) {
    dl.append(el("dt", null, label), el("dd", null, value));
  }

  function renderDetails(p) {
    const c = p.card;
    const s = p.state;
    const f = s && s.face && typeof s.face === "object" ? s.face : null;
    const v = s && s.voice && typeof s.voice === "object" ? s.voice : null;
    const t = talkById.get(p.info.participant_id) || null;
    const parts = [];

    const faceH = el("h4", "more-h", f ? `Face (track ${f.track_id ?? DASH})` : "Face");
    parts.push(faceH);
    if (!f) {
      parts.push(el("p", "more-note", s && s.face_visible ?
        "No landmark readings (this deployment's face detector gives none)." :
        "No landmark readings while no face is in view."));
    } else {
      const dl = el("dl", "more-list");
      detailRow(dl, "Blinks counted", isNum(f.blinks) ? String(f.blinks) : DASH);
      detailRow(dl, "Eye openness (EAR)", num(f.ear, 2));
      detailRow(dl, "Gaze yaw / pitch", `${deg(f.gaze_yaw)} / ${deg(f.gaze_pitch)}`);
      detailRow(dl, "Rule labels now", Array.isArray(f.au_labels) && f.au_labels.length ?
        f.au_labels.map(String).join(", ") : "none");
      parts.push(dl);

      parts.push(el("h4", "more-h", "Action units (0–5, vs. own neutral)"));
      if (!f.aus || typeof f.aus !== "object") {
        parts.push(el("p", "more-note", f.calibrated === false ?
          "calibrating… (needs a few seconds of a neutral face)" : "not measured"));
      } else {
        const ul = el("ul", "au-list");
        for (const [au, val] of Object.entries(f.aus).sort()) {
          const li = el("li", "au-row");
          li.dataset.au = au;
          const lab = el("span", "au-name", au);
          lab.title = AU_NAMES[au] || "";
          const m = meter(`${au} ${AU_NAMES[au] || ""} intensity, 0 to 5`, 0, 5, false);
          if (isNum(val)) {
            setWidth(m.fill, val / 5);
            m.meter.setAttribute("aria-valuenow", clamp(val, 0, 5).toFixed(1));
          }
          li.append(lab, m.meter, el("span", "au-val", num(val, 1)));
          ul.append(li);
        }
        parts.push(ul);
      }

      const w = f.window && typeof f.window === "object" ? f.window : null;
      parts.push(el("h4", "more-h", w && isNum(w.window_secs) ?
        `Last ${num(w.window_secs, 0)} s` : "Window"));
      if (!w) {
        parts.push(el("p", "more-note", "not enough face time yet"));
      } else {
        const dl = el("dl", "more-list");
        detailRow(dl, "Face frames", isNum(w.face_frames) ? String(w.face_frames) : DASH);
        detailRow(dl, "Blink frequency", isNum(w.blink_freq) ? `${num(w.blink_freq * 60, 0)}/min` : DASH);
        detailRow(dl, "Smiling", isNum(w.smile_freq) ? pct(w.smile_freq) : DASH);
        detailRow(dl, "Mean head pitch", deg(w.avg_head_tilt));
        detailRow(dl, "Looking away", isNum(w.percent_away) ? `${Math.round(w.percent_away)}%` : DASH);
        const counts = w.emotion_counts && typeof w.emotion_counts === "object" ?
          Object.entries(w.emotion_counts).filter(([, n]) => isNum(n)).sort((a, b) => b[1] - a[1]) : [];
        detailRow(dl, "Rule labels", counts.length ?
          counts.map(([k, n]) => `${k} ${n}`).join(", ") : "none");
        parts.push(dl);
      }
    }

    parts.push(el("h4", "more-h", "Voice"));
    if (!v && !t) {
      parts.push(el("p", "more-note", "No voice readings."));
    } else {
      const dl = el("dl", "more-list");
      if (v) {
        detailRow(dl, "Pitch", isNum(v.pitch_hz) ? `${Math.round(v.pitch_hz)} Hz` : DASH);
        detailRow(dl, "Loudness", isNum(v.loudness_dbfs) ? `${num(v.loudness_dbfs, 0)} dBFS` : DASH);
      }
      if (t) {
        detailRow(dl, "Interruptions", isNum(t.interruptions) ? String(t.interruptions) : DASH);
        detailRow(dl, "Overlap", duration(t.overlap_secs));
        detailRow(dl, "Longest turn", duration(t.longest_turn_secs));
      }
      const ve = v && v.emotion && typeof v.emotion === "object" ? v.emotion : null;
      const present = ve ? presentProbs(ve.probs) : [];
      if (present.length) {
        detailRow(dl, "Voice classes", present.map(([k, pv]) => `${k} ${pct(pv)}`).join(", "));
      }
      parts.push(dl);
    }
    c.detailsBody.replaceChildren(...parts);
  }

  function updateAge(p) {
    const c = p.card;
    if (!c) return;
    if (!p.state) { setText(c.updated, "no update yet"); return; }
    setText(c.updated, ago(Math.max(0, serverNow() - Number(p.state.ts))));
  }

  function compareTop(a, b) {
    const al = a.info.left_at != null, bl = b.info.left_at != null;
    if (al !== bl) return al ? 1 : -1;
    if (al) return b.info.left_at - a.info.left_at; // most recently left first
    return a.info.joined_at - b.info.joined_at || a.info.participant_id.localeCompare(b.info.participant_id);
  }

  function compareSub(a, b) {
    const at = a.info.face_track, bt = b.info.face_track;
    if (at !== bt) {
      if (at == null) return 1;
      if (bt == null) return -1;
      return at - bt;
    }
    return a.info.joined_at - b.info.joined_at || a.info.participant_id.localeCompare(b.info.participant_id);
  }

  // Top-level participants in the usual order, each followed by the faces of its camera.
  function sortedPeople() {
    const all = Array.from(people.values());
    const children = new Map();
    const tops = [];
    for (const p of all) {
      const parent = p.info.parent_id;
      if (parent && parent !== p.info.participant_id && people.has(parent)) {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(p);
      } else {
        tops.push(p);
      }
    }
    tops.sort(compareTop);
    const out = [];
    const seen = new Set();
    const add = (p) => {
      if (seen.has(p)) return;
      seen.add(p);
      out.push(p);
      const kids = children.get(p.info.participant_id);
      if (kids) for (const k of kids.sort(compareSub)) add(k);
    };
    for (const p of tops) add(p);
    for (const p of all) add(p); // parent cycles: never lose a card
    return out;
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
    setText(countEl, list.length ? `${present} present${left ? ` · ${left} left` : ""}` : "");
    // Timelines are redrawn by the periodic tick (at most 2x/s); draw only new ones here.
    for (const p of list) if (!p.drawn) drawTimeline(p);
  }

  // ---------- conversation strip ----------
  function renderTalk() {
    talkDirty = false;
    const t = talk;
    setHidden(strip.root, !t);
    if (!t) return;

    // Who is speaking now: rebuilt only when the set (or a name) changes.
    const ids = Array.isArray(t.speaking) ? t.speaking.map(String) : [];
    const key = ids.map((id) => `${id}\u0000${nameOf(id)}`).join("\u0001");
    if (key !== strip.speakingKey) {
      strip.speakingKey = key;
      strip.speaking.replaceChildren(...ids.map((id) => {
        const li = el("li", "speaker");
        li.dataset.participantId = id;
        const dot = el("span", "speaker-dot");
        dot.setAttribute("aria-hidden", "true");
        dot.style.background = partyColor(id)[0];
        li.append(dot, el("span", "speaker-name", nameOf(id)));
        return li;
      }));
      setHidden(strip.nobody, ids.length > 0);
    }

    // Talk share: one segment per participant, in the cards' order (stable, no jumping).
    const entries = new Map();
    for (const e of Array.isArray(t.participants) ? t.participants : []) {
      if (e && e.participant_id != null) entries.set(String(e.participant_id), e);
    }
    const order = sortedPeople().map((p) => p.info.participant_id).filter((id) => entries.has(id));
    for (const id of entries.keys()) if (!order.includes(id)) order.push(id);
    let total = 0;
    for (const id of order) {
      const sh = entries.get(id).talk_share;
      if (isNum(sh) && sh > 0) total += sh;
    }
    const labels = [];
    const seen = new Set();
    let prevSeg = null;
    let prevLi = null;
    for (const id of order) {
      const e = entries.get(id);
      seen.add(id);
      let ref = strip.segments.get(id);
      if (!ref) {
        const seg = el("span", "share-seg");
        seg.setAttribute("aria-hidden", "true");
        const segText = el("span", "share-seg-text");
        seg.append(segText);
        const li = el("li", "share-item");
        li.dataset.participantId = id;
        const sw = el("span", "swatch");
        sw.setAttribute("aria-hidden", "true");
        const name = el("span", "share-name");
        const value = el("span", "share-value");
        li.append(sw, name, value);
        ref = { seg, segText, li, sw, name, value };
        strip.segments.set(id, ref);
      }
      const [bg, fg] = partyColor(id);
      if (ref.seg.style.background !== bg) { ref.seg.style.background = bg; ref.seg.style.color = fg; }
      if (ref.sw.style.background !== bg) ref.sw.style.background = bg;
      const sh = isNum(e.talk_share) && e.talk_share > 0 ? e.talk_share : 0;
      const frac = total > 0 ? sh / total : 0;
      setWidth(ref.seg, frac);
      setHidden(ref.seg, frac <= 0);
      const nm = nameOf(id);
      setText(ref.segText, `${nm} ${pct(e.talk_share)}`);
      setAttr(ref.seg, "title", `${nm}: ${pct(e.talk_share)} of speech, ${duration(e.talk_secs)}`);
      setText(ref.name, nm);
      setText(ref.value, `${pct(e.talk_share)} · ${duration(e.talk_secs)}`);
      ref.li.classList.toggle("is-speaking", ids.includes(id));
      labels.push(`${nm} ${pct(e.talk_share)}`);
      const expSeg = prevSeg ? prevSeg.nextSibling : strip.bar.firstChild;
      if (ref.seg !== expSeg) strip.bar.insertBefore(ref.seg, expSeg);
      const expLi = prevLi ? prevLi.nextSibling : strip.legend.firstChild;
      if (ref.li !== expLi) strip.legend.insertBefore(ref.li, expLi);
      prevSeg = ref.seg;
      prevLi = ref.li;
    }
    for (const [id, ref] of strip.segments) {
      if (!seen.has(id)) { ref.seg.remove(); ref.li.remove(); strip.segments.delete(id); }
    }
    setHidden(strip.barEmpty, total > 0);
    setAttr(strip.bar, "aria-label", total > 0 ?
      `Talk share: ${labels.join(", ")}` : "Talk share: no speech yet");

    // Meeting figures.
    setText(strip.duration, duration(t.duration_secs));
    const speechPct = isNum(t.speech_secs) && isNum(t.duration_secs) && t.duration_secs > 0 ?
      ` (${pct(t.speech_secs / t.duration_secs)})` : "";
    setText(strip.speech, `${duration(t.speech_secs)}${speechPct}`);
    setText(strip.silence, duration(t.silence_secs));
    setText(strip.longSilences, isNum(t.long_silences) ? String(t.long_silences) : DASH);
    setText(strip.overlap, duration(t.overlap_secs));
  }

  function applyTalk(t) {
    if (!t || typeof t !== "object") return;
    if (talk && isNum(talk.ts) && isNum(t.ts) && t.ts < talk.ts) return; // out of order
    talk = t;
    exposed.talk = t;
    const changed = new Set(talkById.keys());
    talkById.clear();
    for (const e of Array.isArray(t.participants) ? t.participants : []) {
      if (!e || e.participant_id == null) continue;
      const id = String(e.participant_id);
      talkById.set(id, e);
      changed.add(id);
    }
    for (const id of changed) {
      const p = people.get(id);
      if (p) p.dirty = true;
    }
    talkDirty = true;
  }

  // ---------- notices ----------
  function addNotice(n) {
    if (!n || typeof n !== "object" || n.code == null) return;
    const code = String(n.code);
    const text = typeof n.text === "string" && n.text ? n.text : code.replace(/_/g, " ");
    let rec = notices.get(code);
    if (rec) {
      if (rec.text === text) return; // said once
      rec.text = text;
      setText(rec.textNode, text);
    } else {
      const item = el("p", "notice-item");
      item.dataset.code = code;
      const icon = el("span", "notice-icon", "!");
      icon.setAttribute("aria-hidden", "true");
      const textNode = el("span", "notice-text", text);
      const dismiss = el("button", "notice-dismiss", "×");
      dismiss.type = "button";
      dismiss.setAttribute("aria-label", "Dismiss notice");
      dismiss.addEventListener("click", () => {
        item.hidden = true;
        setHidden(noticesEl, !Array.from(noticesEl.children).some((x) => !x.hidden));
      });
      item.append(icon, textNode, dismiss);
      noticesEl.append(item);
      rec = { code, text, item, textNode };
      notices.set(code, rec);
    }
    exposed.notices = Array.from(notices.values(), (r) => ({ code: r.code, text: r.text }));
    setHidden(noticesEl, !Array.from(noticesEl.children).some((x) => !x.hidden));
  }

  // ---------- render scheduling: at most every RENDER_MIN_MS, on an animation frame ----------
  let renderQueued = false;
  let lastRender = -Infinity;
  function renderNow() {
    renderQueued = false;
    lastRender = performance.now();
    let needLayout = false;
    for (const p of people.values()) if (p.dirty || !p.card) { needLayout = true; break; }
    if (needLayout || cardsEl.children.length !== people.size) layout();
    if (talkDirty) renderTalk();
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    const wait = lastRender + RENDER_MIN_MS - performance.now();
    if (wait > 0) setTimeout(() => requestAnimationFrame(renderNow), wait);
    else requestAnimationFrame(renderNow);
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
    // The snapshot's talk figures replace ours (null: none yet); notices only add up.
    talk = null;
    exposed.talk = null;
    talkById.clear();
    if (msg.talk) applyTalk(msg.talk);
    talkDirty = true;
    for (const n of Array.isArray(msg.notices) ? msg.notices : []) addNotice(n);
    layout();
    renderTalk();
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
        if (talk) talkDirty = true; // names in the strip
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
      case "talk":
        applyTalk(msg);
        break;
      case "notice":
        addNotice(msg);
        return; // shown at once; rare
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
  renderTalk();
  connect();
})();
