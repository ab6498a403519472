// sidebar.js: the host's live engagement sidebar. Keeps a WebSocket to
// /api/meetings/{id}/ws open (authorised by the host cookie; reconnecting with 1 s → 15 s backoff), rebuilds from each
// snapshot, and renders:
//  - meeting notices (deduplicated by code), and while the server's models load,
//    "analysis starting (models loading)…" (participants' faces read "analysis starting"),
//  - "End meeting" and "Delete meeting and its data"; a participant who withdraws (leaves and
//    has their data deleted) loses their card, moments and summary lines at once,
//  - mood summaries, newest first, with a "Summarize now" button and the active summarizer,
//  - "Ask about the meeting": a question box whose answers (with the time range they looked
//    at and who answered) go beneath it, newest first,
//  - a meeting strip: room engagement (band, value, trend, mood) with its timeline, who is
//    speaking now, a stacked talk-share bar, meeting figures and the latest moments,
//  - one entry per participant (faces of a room camera grouped under the camera's entry): a
//    compact row (name, engagement band and value, trend, speaking and face indicators) and a
//    full card: engagement with its components and what moved, valence and arousal with their
//    sources, the fused basic expressions, face and voice readings, an engagement timeline, and
//    every other state of the server's registry in collapsible tables.
// The bots the host invited are bots.js's: `bot` messages and the snapshot's `bots` reach it as
// "meetmood:bot" / "meetmood:bots" events on #sidebar.
// Which states exist, their groups, labels and definitions come from the server (`definitions`
// in the snapshot): nothing here lists them. Above COMPACT_AFTER participants the list shows
// compact rows (each expands into its card); a toggle overrides that.
// Server text only ever reaches the page through textContent / attributes, never innerHTML.
// DOM work is coalesced: events mark participants dirty and one animation frame (at most every
// RENDER_MIN_MS) updates what changed; charts redraw at most every TICK_MS.
"use strict";

(() => {
  const root = document.getElementById("sidebar");
  if (!root) return;

  const DASH = "—";
  const BACKOFF_MIN_MS = 1000;
  // Close code of a socket over the server's limit of sidebars for one meeting.
  const TOO_MANY_SIDEBARS = 4429;
  const BACKOFF_MAX_MS = 15000;
  const GOOD_CONNECTION_MS = 5000; // a connection that lasted this long resets the backoff
  const OFFLINE_AFTER_FAILURES = 3;
  const TICK_MS = 500; // charts + "updated … ago": at most 2x per second
  const RENDER_MIN_MS = 250; // DOM updates at most 4x per second
  const SORT_MIN_MS = 2000; // an engagement-sorted list reorders at most this often
  const COMPACT_AFTER = 6; // more participants than this: compact rows
  const MOVE_SECS = 60; // "what moved": change over this many seconds…
  const MOVE_MIN = 0.1; // …shown from this size on
  const GAP_SECS = 10; // a longer gap between two points breaks the timeline
  const MOMENTS_SHOWN = 5;
  const CHART_H = 64; // css px, plot + time axis
  const ROOM_CHART_H = 56;
  const HEAD_DIAL_DEG = 45; // head pose dial: the rim is this many degrees
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEADLINE_GROUPS = new Set(["engagement", "affect"]); // shown at the top of a card
  const LEAD = "engagement"; // the group's (and the card's) lead reading
  const BASIC = "basic"; // the group drawn as expression bars
  const GROUP_TITLES = {
    basic: "Basic expressions (face and voice, fused)",
    vocal: "Vocal and expressive states",
    composite: "Composite states",
  };
  const SOURCE_LABELS = {
    face_fer: "face expression", face_fer_relative: "expression change", face_aus: "face AUs",
    face_presence: "face in view", gaze: "gaze", head_motion: "head movement",
    voice_ser: "voice tone", voice_prosody: "voice prosody", voice: "voice",
    talk_share: "talk share", turns: "turns", recency: "recent speech", speaking: "speaking",
  };
  const TREND_GLYPHS = { rising: "↗", falling: "↘", steady: "→" };
  const MOMENT_GLYPHS = {
    engagement_drop: "▼", engagement_rise: "▲", long_silence: "…", joint_smiles: "☺",
    media_gap: "‖",
  };
  // Timeline series: the lead reading dark and thick, its components in Okabe–Ito colours.
  const SERIES_COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"];
  const LEAD_COLOR = "#1f2328";
  const MOMENT_COLORS = {
    engagement_drop: "#b35900", engagement_rise: "#1a7f37", long_silence: "#6e7781",
    joint_smiles: "#bf8700", media_gap: "#8250df",
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

  const meetingId = root.dataset.meetingId || "";
  let historySecs = Number(root.dataset.historySecs) || 300;

  const listEl = document.getElementById("people");
  const emptyEl = document.getElementById("empty");
  const countEl = document.getElementById("people-count");
  const toolsEl = document.getElementById("people-tools");
  const sortEl = document.getElementById("sort");
  const viewBtn = document.getElementById("view-toggle");
  const legendEl = document.getElementById("legend");
  const connEl = document.getElementById("conn");
  const connText = document.getElementById("conn-text");
  const announcer = document.getElementById("announcer");
  const titleEl = document.getElementById("sb-meeting-name");
  const noticesEl = document.getElementById("notices");
  const feed = {
    list: document.getElementById("summaries"),
    none: document.getElementById("summaries-none"),
    who: document.getElementById("summarizer"),
    button: document.getElementById("summarize-now"),
    status: document.getElementById("summarize-status"),
  };
  const strip = {
    root: document.getElementById("meeting-strip"),
    talkPart: document.getElementById("talk-strip"),
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
    room: document.getElementById("room"),
    roomBand: document.getElementById("room-band"),
    roomEng: document.getElementById("room-engagement"),
    roomTrend: document.getElementById("room-trend"),
    roomMood: document.getElementById("room-mood"),
    roomNote: document.getElementById("room-note"),
    roomChartEl: document.getElementById("room-chart"),
    moments: document.getElementById("moments"),
    momentsNone: document.getElementById("moments-none"),
    segments: new Map(), // participant_id -> {seg, li, sw, name, value}
    speakingKey: null,
    momentsKey: null,
  };

  // ---------- model ----------
  // participant_id -> person: {info, state, hist, item, row, card, chart, expanded, dirty, …}
  const people = new Map();
  let defs = []; // the server's state definitions, in registry order
  let defsKey = "";
  const defsByName = new Map();
  let headline = { lead: null, components: [], affect: [], basic: [], tableGroups: [] };
  let chartNames = []; // readings kept in each participant's timeline
  let bands = [0.35, 0.6];
  let clockOffset = 0; // server clock minus client clock, seconds
  let talk = null; // last talk event
  const talkById = new Map(); // participant_id -> that participant's entry of the last talk event
  let room = null; // last RoomState
  const roomHist = { ts: [], eng: [], ver: 0 };
  let moments = []; // oldest first, within the history window
  const notices = new Map(); // code -> {code, text, node}
  const STARTING_TEXT = "analysis starting (models loading)…";
  const VOICE_STARTING_TEXT = "voice emotion starting (model loading)…";
  let faceStarting = false; // the face model is still loading (see setModels)
  let modelsItem = null; // the notices' "analysis starting" line
  const partyColorIndex = new Map(); // participant_id -> index into PARTY_COLORS
  let talkDirty = false;
  let roomDirty = false;
  let listDirty = true; // membership, order or mode may have changed
  let chartsDue = true;
  let viewChoice = null; // null = automatic; "compact" | "cards" once the host picks
  let sortChoice = null; // null = the mode's default
  let compact = false;
  let sortKeys = new Map(); // participant_id -> engagement used for ordering
  let sortKeysAt = -Infinity;
  let cardSeq = 0;

  // Exposed for tests.
  const exposed = {
    socketState: "connecting", participants: {}, talk: null, notices: [], room: null,
    moments: [], definitions: [], compact: false, summaries: [], summarizer: null,
  };
  window.sidebar = exposed;
  // Cheap counters for `meetmood bench sidebar`: messages handled and time in handlers, frames
  // rendered and time in render, with the last SAMPLE_CAP durations of each for percentiles.
  const SAMPLE_CAP = 4096;
  const stats = {
    messages: 0, handlerMs: 0, frames: 0, renderMs: 0, handlerSamples: [], renderSamples: [],
  };
  window.__sidebarStats = stats;
  function sample(arr, v) {
    if (arr.length < SAMPLE_CAP) arr.push(v);
    else arr[(stats.messages + stats.frames) % SAMPLE_CAP] = v;
  }

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

  function setClass(node, name, on) {
    if (node.classList.contains(name) !== !!on) node.classList.toggle(name, !!on);
  }

  function setWidth(node, frac) {
    const w = `${(Math.max(0, Math.min(1, frac)) * 100).toFixed(1)}%`;
    if (node.style.width !== w) node.style.width = w;
  }

  function setStyle(node, prop, value) {
    if (node.style[prop] !== value) node.style[prop] = value;
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

  function span(secs) {
    if (!isNum(secs)) return DASH;
    if (secs >= 90) return `${Math.round(secs / 60)} min`;
    return `${Math.round(secs)} s`;
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

  // A reading's value in its definition's terms: probabilities and shares as %, -1..1 signed.
  function fmtValue(d, v) {
    if (!isNum(v)) return DASH;
    if (d && (d.unit === "probability" || d.unit === "share")) return pct(v);
    if (d && d.low < 0) return signed(v, 2);
    return num(v, 2);
  }

  function conf(c) {
    return isNum(c) ? `${Math.round(clamp(c, 0, 1) * 100)}%` : DASH;
  }

  function sourcesText(sources) {
    if (!Array.isArray(sources) || !sources.length) return "";
    return sources.map((s) => SOURCE_LABELS[s] || String(s).replace(/_/g, " ")).join(", ");
  }

  function describe(d) {
    const lines = [`${d.label}: ${d.definition}`];
    if (d.formula) lines.push(`Formula: ${d.formula}`);
    if (Array.isArray(d.inputs) && d.inputs.length) lines.push(`Inputs: ${sourcesText(d.inputs)}`);
    lines.push(`Evidence behind it: ${d.support}`);
    if (d.alias_of) lines.push(`Same quantity as ${d.alias_of}`);
    if (d.null_reason) lines.push(`Not estimated: ${d.null_reason}`);
    return lines.join("\n");
  }

  function notEstimable(d) {
    return !!d && (d.support === "none" || !!d.null_reason);
  }

  function band(v) {
    if (!isNum(v)) return "unknown";
    return v < bands[0] ? "low" : v < bands[1] ? "medium" : "high";
  }

  function partyColor(id) {
    if (!partyColorIndex.has(id)) partyColorIndex.set(id, partyColorIndex.size % PARTY_COLORS.length);
    return PARTY_COLORS[partyColorIndex.get(id)];
  }

  function nameOf(id) {
    const p = people.get(id);
    return (p && p.info.display_name) || "(no name)";
  }

  function namesOf(ids) {
    const list = (Array.isArray(ids) ? ids : []).map((id) => nameOf(String(id)));
    if (list.length <= 1) return list.join("");
    return `${list.slice(0, -1).join(", ")} and ${list[list.length - 1]}`;
  }

  function reading(s, name) {
    const r = s && s.readings ? s.readings[name] : null;
    return r && typeof r === "object" ? r : null;
  }

  // ---------- definitions ----------
  function setDefinitions(list) {
    const clean = (Array.isArray(list) ? list : []).filter((d) => d && typeof d.name === "string");
    const key = clean.map((d) => `${d.name}\u0000${d.group}\u0000${d.label}\u0000${d.support}`).join("\u0001");
    defs = clean;
    exposed.definitions = clean;
    defsByName.clear();
    for (const d of clean) defsByName.set(d.name, d);
    const inGroup = (g) => clean.filter((d) => d.group === g);
    const leadGroup = inGroup(LEAD);
    const lead = defsByName.get(LEAD) || leadGroup[leadGroup.length - 1] || null;
    const groups = [];
    for (const d of clean) if (!groups.includes(d.group)) groups.push(d.group);
    headline = {
      lead,
      components: leadGroup.filter((d) => d !== lead),
      affect: inGroup("affect"),
      basic: inGroup(BASIC),
      tableGroups: groups.filter((g) => !HEADLINE_GROUPS.has(g)),
    };
    chartNames = (lead ? [lead] : []).concat(headline.components).map((d) => d.name);
    if (key !== defsKey) {
      defsKey = key;
      // Another registry: the cards are rebuilt (rare: a server upgrade between connections).
      for (const p of people.values()) dropCard(p);
      buildLegend();
    }
  }

  function buildLegend() {
    legendEl.replaceChildren();
    chartNames.forEach((name, i) => {
      const d = defsByName.get(name);
      const li = el("li", "legend-item");
      const sw = el("span", i === 0 ? "swatch swatch-line swatch-lead" : "swatch swatch-line");
      sw.style.background = seriesColor(i);
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, el("span", null, d ? d.label.toLowerCase() : name));
      legendEl.append(li);
    });
    if (!chartNames.length) return;
    const noFace = el("li", "legend-item");
    const nf = el("span", "swatch swatch-noface");
    nf.setAttribute("aria-hidden", "true");
    noFace.append(nf, el("span", null, "no face"));
    const spk = el("li", "legend-item");
    const sp = el("span", "swatch swatch-speaking");
    sp.setAttribute("aria-hidden", "true");
    spk.append(sp, el("span", null, "speaking"));
    legendEl.append(noFace, spk);
  }

  function seriesColor(i) {
    return i === 0 ? LEAD_COLOR : SERIES_COLORS[(i - 1) % SERIES_COLORS.length];
  }

  // ---------- participant records ----------
  function newHist() {
    const v = {};
    for (const n of chartNames) v[n] = [];
    return { ts: [], face: [], spk: [], v, ver: 0 };
  }

  function publish(p) {
    // window.sidebar.participants[id]: the participant record (P, with .state = last S) and,
    // for convenience, the last state's fields flattened on top (face_visible, readings, …).
    const rec = Object.assign({}, p.info, { state: p.state });
    if (p.state) Object.assign(rec, p.state);
    exposed.participants[p.info.participant_id] = rec;
  }

  function cleanInfo(info) {
    const track = Number(info.face_track);
    return {
      participant_id: String(info.participant_id),
      display_name: typeof info.display_name === "string" ? info.display_name : "",
      joined_at: Number(info.joined_at) || serverNow(),
      left_at: info.left_at == null ? null : Number(info.left_at),
      leave_reason: info.leave_reason == null ? null : String(info.leave_reason),
      parent_id: info.parent_id == null || info.parent_id === "" ? null : String(info.parent_id),
      face_track: info.face_track == null || !isFinite(track) ? null : track,
    };
  }

  function upsertParticipant(info) {
    const clean = cleanInfo(info);
    const id = clean.participant_id;
    let p = people.get(id);
    if (!p) {
      p = {
        info: clean, state: null, hist: newHist(), item: null, row: null, card: null,
        chart: null, chartVer: -1, expanded: false, dirty: true, visible: false,
      };
      people.set(id, p);
      listDirty = true;
    } else {
      if (p.info.parent_id !== clean.parent_id || p.info.left_at !== clean.left_at ||
          p.info.display_name !== clean.display_name) listDirty = true;
      p.info = clean;
      p.dirty = true;
    }
    if (info.state) applyState(p, info.state, false);
    publish(p);
    return p;
  }

  function trimHist(h, now) {
    const cutoff = now - historySecs - 30; // keep a little before the window for coverage
    let i = 0;
    while (i < h.ts.length && h.ts[i] < cutoff) i++;
    if (i > 0) {
      h.ts.splice(0, i);
      if (h.face) { h.face.splice(0, i); h.spk.splice(0, i); }
      if (h.v) for (const k in h.v) h.v[k].splice(0, i);
      if (h.eng) h.eng.splice(0, i);
      h.ver++;
    }
  }

  // One timeline point; a gap longer than GAP_SECS gets a null point so the line breaks.
  function addPoint(p, ts, faceVisible, speaking, values) {
    const h = p.hist;
    const n = h.ts.length;
    if (n && ts <= h.ts[n - 1]) return;
    if (n && ts - h.ts[n - 1] > GAP_SECS) {
      h.ts.push(h.ts[n - 1] + GAP_SECS / 2);
      h.face.push(true);
      h.spk.push(false);
      for (const k of chartNames) h.v[k].push(null);
    }
    h.ts.push(ts);
    h.face.push(!!faceVisible);
    h.spk.push(speaking === true);
    for (const k of chartNames) {
      const v = values(k);
      h.v[k].push(isNum(v) ? v : null);
    }
    h.ver++;
  }

  function applyState(p, s, addToHistory) {
    const ts = Number(s.ts);
    if (!isFinite(ts)) return;
    if (p.state && ts < p.state.ts) return; // out of order
    p.state = s;
    p.dirty = true;
    if (addToHistory) {
      addPoint(p, ts, s.face_visible, s.is_speaking, (k) => {
        const r = reading(s, k);
        return r ? r.value : null;
      });
    }
  }

  // The value of reading `name` about MOVE_SECS ago (the first point at or after then).
  function valueAgo(p, name, now) {
    const h = p.hist;
    const col = h.v[name];
    if (!col || !h.ts.length) return null;
    const target = now - MOVE_SECS;
    if (h.ts[0] > target + MOVE_SECS / 2) return null; // not enough history
    let lo = 0, hi = h.ts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (h.ts[mid] < target) lo = mid + 1; else hi = mid;
    }
    for (let i = lo; i < h.ts.length; i++) if (isNum(col[i])) return col[i];
    return null;
  }

  // Change of each component over MOVE_SECS: [{name, delta}] by size, largest first.
  function moves(p) {
    const s = p.state;
    if (!s) return [];
    const now = Number(s.ts);
    const out = [];
    for (const name of chartNames) {
      const r = reading(s, name);
      const then = valueAgo(p, name, now);
      if (r && isNum(r.value) && isNum(then)) out.push({ name, delta: r.value - then });
    }
    return out;
  }

  // ---------- participant entries: a compact row and a card (built on demand) ----------
  function buildItem(p) {
    const item = el("li", "person");
    item.dataset.participantId = p.info.participant_id;
    const row = el("button", "p-row");
    row.type = "button";
    row.dataset.participantId = p.info.participant_id;
    setAttr(row, "aria-expanded", "false");
    const subMark = el("span", "sub-mark", "↳");
    subMark.setAttribute("aria-hidden", "true");
    const name = el("span", "row-name");
    const speaking = el("span", "row-ind row-speaking");
    speaking.dataset.field = "row-speaking";
    const face = el("span", "row-ind row-face");
    face.dataset.field = "row-face";
    const why = el("span", "row-why");
    const trend = el("span", "trend");
    const chip = el("span", "band-chip", DASH);
    chip.dataset.band = "unknown";
    const value = el("span", "row-eng", DASH);
    row.append(subMark, name, speaking, face, why, trend, chip, value);
    row.addEventListener("click", () => {
      p.expanded = !p.expanded;
      p.reveal = p.expanded;
      p.dirty = true;
      listDirty = true;
      chartsDue = true;
      scheduleRender();
    });
    item.append(row);
    p.item = item;
    p.row = { row, name, speaking, face, why, trend, chip, value, key: "" };
  }

  function renderRow(p) {
    const r = p.row;
    const s = p.state;
    const info = p.info;
    const displayName = info.display_name || "(no name)";
    setText(r.name, displayName);
    const eng = reading(s, LEAD);
    const v = eng ? eng.value : null;
    const b = band(v);
    setData(r.chip, "band", b);
    setText(r.chip, b === "unknown" ? DASH : b);
    setText(r.value, isNum(v) ? num(v, 2) : DASH);
    const speaking = !!(s && s.is_speaking === true);
    setData(r.speaking, "speaking", speaking ? "true" : "false");
    setAttr(r.speaking, "title", speaking ? "speaking" : "not speaking");
    setText(r.speaking, speaking ? "speaking" : "");
    const faceVisible = !!(s && s.face_visible);
    setData(r.face, "faceVisible", !s ? "unknown" : faceVisible ? "true" : "false");
    setAttr(r.face, "title", faceStarting && !faceVisible ? STARTING_TEXT :
      !s ? "waiting" : faceVisible ? "face visible" : "no face");
    setText(r.face, faceStarting && !faceVisible ? "starting" :
      !s ? "" : faceVisible ? "face" : "no face");
    const t = room && room.trends ? room.trends[info.participant_id] : null;
    renderTrend(r.trend, t, null);
    // Why: the component that moved most, when it moved enough.
    const mv = moves(p).filter((m) => m.name !== LEAD && Math.abs(m.delta) >= MOVE_MIN)
      .sort((a, b2) => Math.abs(b2.delta) - Math.abs(a.delta));
    const top = mv[0];
    const d = top ? defsByName.get(top.name) : null;
    const stale = !!(s && s.stale);
    setText(r.why, stale ? "stale" :
      top ? `${d ? d.label.toLowerCase() : top.name} ${top.delta < 0 ? "▼" : "▲"}` : "");
    setData(r.why, "dir", stale ? "stale" : top ? (top.delta < 0 ? "down" : "up") : "none");
    setAttr(r.why, "title", stale ? "Analysis for this person is failing or behind; values may be old." :
      top ? `${d ? d.label : top.name} ${signed(top.delta, 2)} over the last ${span(MOVE_SECS)}` : null);
    const label = `${displayName}: engagement ${b === "unknown" ? "unknown" : `${b}, ${num(v, 2)}`}` +
      `${speaking ? ", speaking" : ""}` +
      `${faceStarting && !faceVisible ? ", analysis starting" : !s ? "" :
        faceVisible ? ", face visible" : ", no face"}` +
      `${stale ? ", stale" : top ? `, ${r.why.textContent}` : ""}` +
      `${info.left_at != null ? ", left" : ""}`;
    setAttr(r.row, "aria-label", label);
    setAttr(r.row, "aria-expanded", p.expanded ? "true" : "false");
    setClass(r.row, "is-sub", !!info.parent_id);
  }

  function renderTrend(node, trend, change) {
    const t = trend && TREND_GLYPHS[trend] ? trend : "none";
    setData(node, "trend", t);
    setText(node, t === "none" ? "" : TREND_GLYPHS[t]);
    const words = t === "none" ? null : `engagement ${t}${isNum(change) ? ` (${signed(change, 2)})` : ""}`;
    setAttr(node, "title", words);
    setAttr(node, "aria-label", words);
    setAttr(node, "role", words ? "img" : null);
  }

  // A reading tile: small label above, value below.
  function tile(field, label, wide) {
    const t = el("div", wide ? "reading reading-wide" : "reading");
    t.dataset.field = field;
    const l = el("span", "r-label", label);
    const v = el("span", "r-value");
    t.append(l, v);
    return { tile: t, label: l, row: v };
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

  function setMeter(m, v, lo, hi) {
    if (!isNum(v)) {
      setWidth(m.fill, 0);
      setAttr(m.meter, "aria-valuenow", null);
      return;
    }
    const x = clamp(v, lo, hi);
    if (lo < 0) {
      const frac = (x - lo) / (hi - lo); // 0..1, 0.5 = the middle
      const left = `${(Math.min(frac, 0.5) * 100).toFixed(1)}%`;
      if (m.fill.style.left !== left) m.fill.style.left = left;
      setWidth(m.fill, Math.abs(frac - 0.5));
      setClass(m.fill, "is-neg", x < 0);
    } else {
      setWidth(m.fill, (x - lo) / (hi - lo));
    }
    setAttr(m.meter, "aria-valuenow", x.toFixed(2));
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

  // One line of a reading: label, meter, value (or the reason it has none), confidence, and
  // what it is made of. Used for engagement's components and for valence/arousal.
  function readingLine(d, extraClass) {
    const li = el("li", `rd ${extraClass || ""}`.trim());
    li.dataset.field = d.name;
    li.title = describe(d);
    const label = el("span", "rd-label", d.label);
    const m = meter(`${d.label}, ${d.low} to ${d.high}`, d.low, d.high, d.low < 0);
    const value = el("span", "rd-value", DASH);
    const move = el("span", "rd-move");
    const cf = el("span", "rd-conf");
    const note = el("span", "rd-note");
    li.append(label, m.meter, value, move, cf, note);
    return { li, d, meter: m, value, move, cf, note };
  }

  function renderReadingLine(ref, r, withSources, delta) {
    const v = r ? r.value : null;
    const has = isNum(v);
    setMeter(ref.meter, v, ref.d.low, ref.d.high);
    setText(ref.value, has ? fmtValue(ref.d, v) : DASH);
    setClass(ref.li, "is-null", !has);
    setText(ref.cf, has ? `conf ${conf(r.confidence)}` : "");
    let note = "";
    if (!has) note = r && r.reason ? r.reason : "not estimated yet";
    else if (r.reason) note = r.reason;
    else if (withSources) note = sourcesText(r.sources);
    if (has && withSources && r.reason && r.sources && r.sources.length) {
      note = `${r.reason} · ${sourcesText(r.sources)}`;
    }
    setText(ref.note, note);
    setData(ref.note, "kind", !has ? "reason" : r.reason ? "caveat" : "sources");
    const moved = isNum(delta) && Math.abs(delta) >= MOVE_MIN;
    setText(ref.move, moved ? `${delta < 0 ? "▼" : "▲"}${num(Math.abs(delta), 2)}` : "");
    setData(ref.move, "dir", moved ? (delta < 0 ? "down" : "up") : "none");
    setAttr(ref.move, "title", moved ? `${signed(delta, 2)} over the last ${span(MOVE_SECS)}` : null);
  }

  function buildCard(p) {
    const card = el("article", "participant-card");
    card.dataset.participantId = p.info.participant_id;
    card.id = `pc-${++cardSeq}`;
    setAttr(p.row.row, "aria-controls", card.id);

    const head = el("header", "card-head");
    const swatch = el("span", "p-swatch");
    swatch.setAttribute("aria-hidden", "true");
    const subMark = el("span", "sub-mark", "↳");
    subMark.setAttribute("aria-hidden", "true");
    const name = el("h3", "p-name");
    const trend = el("span", "trend");
    const badges = el("span", "badges");
    const stale = el("span", "badge badge-stale", "stale");
    stale.title = "Analysis for this person is failing or behind; values may be old.";
    stale.hidden = true;
    const speaking = el("span", "badge badge-speaking", "speaking");
    speaking.hidden = true;
    badges.append(speaking, stale);
    head.append(subMark, swatch, name, trend, badges);

    const meta = el("div", "card-meta");
    const faceWrap = el("span", "face-wrap");
    const face = el("span", "face-indicator");
    face.dataset.field = "face";
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

    // Engagement: band, value, confidence, then its components.
    const lead = headline.lead;
    const eng = el("section", "eng");
    eng.dataset.field = LEAD;
    const engHead = el("div", "eng-head");
    const engLabel = el("span", "eng-label", lead ? lead.label : "Engagement");
    if (lead) engLabel.title = describe(lead);
    const engBand = el("span", "band-chip band-chip-big", DASH);
    engBand.dataset.band = "unknown";
    const engValue = el("span", "eng-value", DASH);
    const engConf = el("span", "eng-conf");
    const engMove = el("span", "rd-move");
    engHead.append(engLabel, engBand, engValue, engMove, engConf);
    const engMeter = meter(`${lead ? lead.label : "Engagement"}, 0 to 1`, 0, 1, false);
    engMeter.meter.classList.add("eng-meter");
    for (const edge of bands) {
      const mark = el("span", "band-mark");
      mark.style.left = `${(edge * 100).toFixed(1)}%`;
      engMeter.meter.append(mark);
    }
    const engNote = el("p", "eng-note");
    const comps = el("ul", "rd-list components");
    comps.setAttribute("aria-label", "Components");
    const compRefs = headline.components.map((d) => {
      const ref = readingLine(d, "component");
      comps.append(ref.li);
      return ref;
    });
    eng.append(engHead, engMeter.meter, engNote, comps);

    // Valence and arousal with their sources.
    const affect = el("ul", "rd-list affect");
    affect.setAttribute("aria-label", "Valence and arousal");
    const affectRefs = headline.affect.map((d) => {
      const ref = readingLine(d, "affect-line");
      affect.append(ref.li);
      return ref;
    });

    // Fused basic expressions as bars.
    const expr = el("div", "expr");
    const dominant = el("p", "dominant-emotion");
    const bars = el("ul", "bars");
    bars.setAttribute("aria-label", "Expressions (fused)");
    const barRefs = headline.basic.map((d) => {
      const li = el("li", "bar-row");
      li.dataset.state = d.name;
      li.title = describe(d);
      const label = el("span", "bar-label", d.name);
      const track = el("span", "bar-track");
      track.setAttribute("aria-hidden", "true");
      const fill = el("span", "bar-fill");
      fill.style.background = `var(--emo-${d.name}, #8c959f)`;
      track.append(fill);
      const value = el("span", "bar-pct", DASH);
      const why = el("span", "bar-why");
      li.append(label, track, value, why);
      bars.append(li);
      return { d, li, fill, value, why };
    });
    expr.append(dominant, bars);

    // Face readings.
    const readings = el("div", "readings");
    const faceGroup = el("div", "reading-group");
    faceGroup.setAttribute("role", "group");
    faceGroup.setAttribute("aria-label", "Face readings");

    const blink = tile("blink-rate", "Blink rate");
    const blinkNum = el("span", "blink-num", DASH);
    const blinkWhy = el("span", "r-sub");
    blink.row.append(blinkNum, blinkWhy);

    const gaze = tile("gaze", "Gaze · time away");
    const away = el("span", "away-badge", DASH);
    away.dataset.field = "looking-away";
    away.dataset.lookingAway = "unknown";
    const awayPct = el("span", "r-sub");
    awayPct.dataset.field = "percent-away";
    gaze.row.append(away, awayPct);

    const pose = tile("head-pose", "Head · pitch/yaw/roll");
    pose.label.title = "Head pose in degrees (pitch + = looking down)";
    const dial = buildHeadDial();
    const poseText = el("span", "pose-text", DASH);
    pose.row.append(dial.svg, poseText);

    const smile = tile("smile", "Smile (0–5)");
    smile.tile.dataset.smiling = "unknown";
    const smileMeter = meter("Smile intensity, 0 to 5", 0, 5, false);
    const smileNum = el("span", "smile-num", DASH);
    const smileState = el("span", "smile-state");
    smile.row.append(smileMeter.meter, smileNum, smileState);
    faceGroup.append(blink.tile, gaze.tile, pose.tile, smile.tile);

    // Voice readings.
    const voiceGroup = el("div", "reading-group");
    voiceGroup.setAttribute("role", "group");
    voiceGroup.setAttribute("aria-label", "Voice readings");

    const talkT = tile("talk-time", "Talk time · share");
    const talkTime = el("span", "talk-secs", DASH);
    const talkShare = el("span", "r-sub");
    talkT.row.append(talkTime, talkShare);

    const arousal = tile("voice-arousal", "Voice arousal (vs. usual)");
    const arousalMeter = meter("Vocal arousal against this speaker's usual, −1 to +1", -1, 1, true);
    const arousalText = el("span", "arousal-num", DASH);
    arousal.row.append(arousalMeter.meter, arousalText);

    const pitch = tile("pitch", "Pitch · loudness");
    const pitchNum = el("span", "pitch-num", DASH);
    const loudness = el("span", "r-sub");
    pitch.row.append(pitchNum, loudness);

    const vemo = tile("voice-emotion", "Voice tone");
    vemo.tile.dataset.status = "none";
    const vemoMain = el("span", "vemo-main", DASH);
    const vemoRest = el("span", "r-sub vemo-rest");
    vemo.row.append(vemoMain, vemoRest);

    voiceGroup.append(talkT.tile, pitch.tile, arousal.tile, vemo.tile);
    readings.append(faceGroup, voiceGroup);

    const tl = el("div", "chart person-chart");
    tl.setAttribute("role", "img");

    // Details: action units, window features and the rest, filled only while open.
    const details = el("details", "more");
    const summary = el("summary", null, "Details: action units, window, voice");
    const detailsBody = el("div", "more-body");
    details.append(summary, detailsBody);
    details.addEventListener("toggle", () => {
      if (details.open) renderDetails(p);
    });

    // Every other state, grouped; built on first open, then updated in place while open.
    const states = el("details", "states");
    const n = defs.filter((d) => headline.tableGroups.includes(d.group)).length;
    const statesSummary = el("summary", null, `All states (${n})`);
    const statesBody = el("div", "states-body");
    states.append(statesSummary, statesBody);
    states.addEventListener("toggle", () => {
      if (states.open) renderStates(p);
    });

    card.append(head, subNote, leftNote, meta, eng, affect, expr, readings, tl, details, states);
    p.card = {
      card, name, swatch, trend, stale, speaking, face, faceText, calib, updated, subNote, leftNote,
      engBand, engValue, engConf, engMove, engMeter, engNote, compRefs, affectRefs,
      dominant, bars, barRefs, chartEl: tl, voiceGroup,
      blinkNum, blinkWhy, blinkTile: blink.tile,
      away, awayPct, poseTile: pose.tile, dialHead: dial.head, poseText,
      smileTile: smile.tile, smileMeter, smileNum, smileState,
      talkTile: talkT.tile, talkTime, talkShare,
      arousalTile: arousal.tile, arousalMeter, arousalText,
      pitchNum, loudness,
      vemoTile: vemo.tile, vemoMain, vemoRest,
      details, detailsBody, states, statesBody, stateRows: null,
    };
    p.item.append(card);
    if (chartObserver) chartObserver.observe(tl);
    p.dirty = true;
    return p.card;
  }

  function dropCard(p) {
    if (p.chart) { p.chart.destroy(); p.chart = null; }
    if (p.card) {
      if (chartObserver) chartObserver.unobserve(p.card.chartEl);
      p.card.card.remove();
      p.card = null;
    }
    p.chartVer = -1;
    p.dirty = true;
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
    setAttr(c.chartEl, "aria-label",
      `Engagement timeline for ${displayName}, last ${Math.round(historySecs / 60)} minutes`);
    const inTalk = talkById.has(info.participant_id);
    setHidden(c.swatch, !inTalk);
    if (inTalk) setStyle(c.swatch, "background", partyColor(info.participant_id)[0]);

    // Faces of a room camera: attached to the camera's card.
    const isSub = !!info.parent_id;
    setClass(c.card, "is-sub", isSub);
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
    setClass(c.card, "is-left", left);
    setHidden(c.leftNote, !left);
    if (left) {
      const reason = info.leave_reason && info.leave_reason !== "left" ?
        ` (${info.leave_reason.replace(/_/g, " ")})` : "";
      setText(c.leftNote, `left at ${clockTime(info.left_at)}${reason}`);
    }

    setHidden(c.stale, !(s && s.stale));
    setHidden(c.speaking, !(s && s.is_speaking === true));
    renderTrend(c.trend, room && room.trends ? room.trends[info.participant_id] : null, null);

    const faceVisible = !!(s && s.face_visible);
    setData(c.face, "faceVisible", faceVisible ? "true" : "false");
    setText(c.faceText, faceStarting && !faceVisible ? "analysis starting" :
      !s ? "waiting" : faceVisible ? "face visible" : "no face");
    setClass(c.card, "no-face", !!s && !faceVisible && !faceStarting);

    renderEngagement(p);
    renderExpressions(p);
    renderFace(p);
    renderVoice(p);
    if (c.details.open) renderDetails(p);
    if (c.states.open) renderStates(p);
    updateAge(p);
  }

  function renderEngagement(p) {
    const c = p.card;
    const s = p.state;
    const r = reading(s, LEAD);
    const v = r ? r.value : null;
    const b = band(v);
    setData(c.engBand, "band", b);
    setText(c.engBand, b === "unknown" ? "unknown" : b);
    setText(c.engValue, isNum(v) ? num(v, 2) : DASH);
    setText(c.engConf, isNum(v) ? `conf ${conf(r.confidence)}` : "");
    setMeter(c.engMeter, v, 0, 1);
    setData(c.engMeter.fill, "band", b);
    setText(c.engNote, !s ? (faceStarting ? STARTING_TEXT : "waiting for the first analysis") :
      !isNum(v) ? (r && r.reason) || "not estimated yet" : r.reason || "");
    setData(c.engNote, "kind", isNum(v) ? "caveat" : "reason");
    const mv = new Map(moves(p).map((m) => [m.name, m.delta]));
    const ed = mv.get(LEAD);
    const moved = isNum(ed) && Math.abs(ed) >= MOVE_MIN;
    setText(c.engMove, moved ? `${ed < 0 ? "▼" : "▲"}${num(Math.abs(ed), 2)}` : "");
    setData(c.engMove, "dir", moved ? (ed < 0 ? "down" : "up") : "none");
    setAttr(c.engMove, "title", moved ? `${signed(ed, 2)} over the last ${span(MOVE_SECS)}` : null);
    for (const ref of c.compRefs) renderReadingLine(ref, reading(s, ref.d.name), false, mv.get(ref.d.name));
    for (const ref of c.affectRefs) renderReadingLine(ref, reading(s, ref.d.name), true, null);
  }

  function renderExpressions(p) {
    const c = p.card;
    const s = p.state;
    let dom = null;
    let anyNum = false;
    for (const ref of c.barRefs) {
      const r = reading(s, ref.d.name);
      const v = r ? r.value : null;
      const ok = isNum(v);
      anyNum = anyNum || ok;
      if (ok && (!dom || v > dom.v)) dom = { d: ref.d, v, r };
      setWidth(ref.fill, ok ? v : 0);
      setText(ref.value, ok ? pct(v) : DASH);
      setText(ref.why, ok ? "" : (r && r.reason) || "");
      setAttr(ref.why, "title", ok ? null : (r && r.reason) || null);
      setClass(ref.li, "is-null", !ok);
    }
    for (const ref of c.barRefs) setClass(ref.li, "is-dominant", !!dom && dom.d === ref.d);
    // None estimable: one line with the (most common) reason instead of seven empty bars.
    setHidden(c.bars, !anyNum && !!s);
    let key;
    if (!s) key = "Waiting for the first analysis…";
    else if (!dom) {
      const why = new Map();
      for (const ref of c.barRefs) {
        const r = reading(s, ref.d.name);
        if (r && r.reason) why.set(r.reason, (why.get(r.reason) || 0) + 1);
      }
      const top = Array.from(why).sort((a, b) => b[1] - a[1])[0];
      key = top ? `No expression reading: ${top[0]}` : "No expression reading yet";
    } else key = null;
    if (key) {
      if (c.domKey !== key) c.dominant.replaceChildren(key);
      c.domKey = key;
      setData(c.dominant, "emotion", "");
    } else {
      const k = `\u0000${dom.d.name}\u0000${pct(dom.v)}\u0000${sourcesText(dom.r.sources)}`;
      if (c.domKey !== k) {
        c.dominant.replaceChildren(
          el("span", "dominant-src", "Expression"), " ",
          el("span", "dominant-label", dom.d.name), " ",
          el("span", "dominant-pct", pct(dom.v)), " ",
          el("span", "dominant-from", sourcesText(dom.r.sources) ? `from ${sourcesText(dom.r.sources)}` : ""));
      }
      c.domKey = k;
      setData(c.dominant, "emotion", dom.d.name);
    }
  }

  // Landmark readings: state.face (null without a face or with the Haar detector).
  function renderFace(p) {
    const c = p.card;
    const s = p.state;
    const f = s && s.face && typeof s.face === "object" ? s.face : null;
    const calibrating = !!f && f.calibrated === false;
    setHidden(c.calib, !calibrating);
    setClass(c.card, "no-landmarks", !f);

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

  // Most probable class first (voice emotion may cover a subset of the seven).
  function presentProbs(probs) {
    if (!probs || typeof probs !== "object") return [];
    return Object.entries(probs).filter(([, v]) => isNum(v)).sort((a, b) => b[1] - a[1]);
  }

  // The talk figures to show: the talk event's entry when it is newer than the state.
  function talkOf(p) {
    const s = p.state;
    const t = talkById.get(p.info.participant_id) || null;
    const st = s && s.talk && typeof s.talk === "object" ? s.talk : null;
    if (t && (!st || (talk && isNum(talk.ts) && talk.ts >= Number(s.ts)))) return t;
    return st;
  }

  // Voice readings: state.voice (null until an audio track is analysed) and talk figures.
  function renderVoice(p) {
    const c = p.card;
    const s = p.state;
    const v = s && s.voice && typeof s.voice === "object" ? s.voice : null;
    const t = talkOf(p);
    // Sub-participants (faces of a room camera) share the camera's microphone: no voice rows.
    setHidden(c.voiceGroup, !!p.info.parent_id && !v && !t);

    setText(c.talkTime, duration(t ? t.talk_secs : v ? v.talk_secs : null));
    const bits = [];
    if (t) bits.push(pct(t.talk_share));
    if (t && isNum(t.turns)) bits.push(plural(t.turns, "turn", "turns"));
    setText(c.talkShare, bits.join(" · "));
    setAttr(c.talkTile, "title", t && isNum(t.interruptions) ?
      `${plural(t.interruptions, "interruption", "interruptions")}` : null);

    // Arousal of the last stretch of speech, -1..1 against the speaker's own baseline.
    const a = v ? v.arousal : null;
    setMeter(c.arousalMeter, isNum(a) ? clamp(a, -1, 1) : null, -1, 1);
    setAttr(c.arousalMeter.meter, "aria-valuetext", isNum(a) ?
      (a === 0 ? "as usual" : `${signed(a, 2)}, ${a > 0 ? "more" : "less"} activated than usual`) :
      v ? "learning voice" : "not measured");
    setText(c.arousalText, isNum(a) ? signed(clamp(a, -1, 1), 2) : v ? "learning voice…" : DASH);
    setClass(c.arousalTile, "is-learning", !!v && !isNum(a));

    setText(c.pitchNum, v && isNum(v.pitch_hz) ? `${Math.round(v.pitch_hz)} Hz` : DASH);
    setText(c.loudness, v && isNum(v.loudness_dbfs) ? `${num(v.loudness_dbfs, 0)} dBFS` : "");

    // Voice tone: most probable + present classes, or why there is none.
    const status = v ? String(v.emotion_status || "none") : "none";
    setData(c.vemoTile, "status", status);
    const ve = v && v.emotion && typeof v.emotion === "object" ? v.emotion : null;
    const present = ve ? presentProbs(ve.probs) : [];
    let main = DASH;
    let rest = "";
    if (status === "unavailable") main = "voice emotion model unavailable";
    else if (status === "starting") main = VOICE_STARTING_TEXT;
    else if (status === "disabled") main = "voice emotion off";
    else if (status === "waiting" && !ve) main = "waiting for speech";
    else if (present.length) {
      const [dom, pd] = present[0];
      main = `${dom} ${pct(pd)}`;
      rest = present.slice(1, 4).map(([k, pv]) => `${k} ${pct(pv)}`).join(" · ");
    }
    setText(c.vemoMain, main);
    setAttr(c.vemoMain, "title", main === DASH ? null : main);
    setText(c.vemoRest, rest);
    setClass(c.vemoTile, "is-note", status !== "ok" && status !== "none" && !ve);
  }

  function detailRow(dl, label, value) {
    dl.append(el("dt", null, label), el("dd", null, value));
  }

  function renderDetails(p) {
    const c = p.card;
    const s = p.state;
    const f = s && s.face && typeof s.face === "object" ? s.face : null;
    const v = s && s.voice && typeof s.voice === "object" ? s.voice : null;
    const t = talkOf(p);
    const parts = [];

    parts.push(el("h4", "more-h", f ? `Face (track ${f.track_id ?? DASH})` : "Face"));
    const fe = s && s.emotion && typeof s.emotion === "object" ? presentProbs(s.emotion.probs) : [];
    if (fe.length) {
      const dl = el("dl", "more-list");
      detailRow(dl, "Face model", fe.slice(0, 3).map(([k, pv]) => `${k} ${pct(pv)}`).join(", "));
      parts.push(dl);
    }
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
          setMeter(m, isNum(val) ? val : null, 0, 5);
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
        const dl2 = el("dl", "more-list");
        detailRow(dl2, "Face frames", isNum(w.face_frames) ? String(w.face_frames) : DASH);
        detailRow(dl2, "Blink frequency", isNum(w.blink_freq) ? `${num(w.blink_freq * 60, 0)}/min` : DASH);
        detailRow(dl2, "Smiling", isNum(w.smile_freq) ? pct(w.smile_freq) : DASH);
        detailRow(dl2, "Mean head pitch", deg(w.avg_head_tilt));
        detailRow(dl2, "Looking away", isNum(w.percent_away) ? `${Math.round(w.percent_away)}%` : DASH);
        const counts = w.emotion_counts && typeof w.emotion_counts === "object" ?
          Object.entries(w.emotion_counts).filter(([, n]) => isNum(n)).sort((a, b) => b[1] - a[1]) : [];
        detailRow(dl2, "Rule labels", counts.length ?
          counts.map(([k, n]) => `${k} ${n}`).join(", ") : "none");
        parts.push(dl2);
      }
    }

    parts.push(el("h4", "more-h", "Voice"));
    if (!v && !t) {
      parts.push(el("p", "more-note", "No voice readings."));
    } else {
      const dl = el("dl", "more-list");
      if (v) {
        const z = v.prosody_z && typeof v.prosody_z === "object" ? Object.entries(v.prosody_z) : [];
        detailRow(dl, "Prosody vs. usual", z.length ?
          z.filter(([, n]) => isNum(n)).map(([k, n]) => `${k} ${signed(n, 1)}`).join(", ") : "learning");
        detailRow(dl, "Pauses", isNum(v.pause_ratio) ? pct(v.pause_ratio) : DASH);
      }
      if (t) {
        detailRow(dl, "Interruptions", isNum(t.interruptions) ? String(t.interruptions) : DASH);
        detailRow(dl, "Overlap", duration(t.overlap_secs));
        if ("longest_turn_secs" in t) detailRow(dl, "Longest turn", duration(t.longest_turn_secs));
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

  // ---------- the states tables ----------
  function buildStates(p) {
    const c = p.card;
    const rows = new Map();
    const parts = [];
    for (const g of headline.tableGroups) {
      const list = defs.filter((d) => d.group === g);
      if (!list.length) continue;
      const table = el("table", "states-table");
      table.dataset.group = g;
      table.append(el("caption", null, GROUP_TITLES[g] || g));
      const thead = el("thead");
      const hr = el("tr");
      for (const [h, cls] of [["State", "st-name"], ["Value", "st-value"], ["Conf.", "st-conf"],
        ["Evidence", "st-support"]]) {
        const th = el("th", cls, h);
        th.scope = "col";
        hr.append(th);
      }
      thead.append(hr);
      const tbody = el("tbody");
      for (const d of list) {
        const tr = el("tr", notEstimable(d) ? "st-row is-not-estimable" : "st-row");
        tr.dataset.state = d.name;
        const th = el("th", "st-name", d.label);
        th.scope = "row";
        th.title = describe(d);
        const td = el("td", "st-value");
        const value = el("span", "st-num", DASH);
        const why = el("span", "st-why");
        td.append(value, why);
        const cf = el("td", "st-conf", DASH);
        const sup = el("td", "st-support");
        const chip = el("span", "support", d.support);
        chip.dataset.support = d.support;
        chip.title = "Strength of the published evidence that what is observed bears on this state";
        sup.append(chip);
        tr.append(th, td, cf, sup);
        tbody.append(tr);
        rows.set(d.name, { d, tr, value, why, cf, key: "" });
      }
      table.append(thead, tbody);
      parts.push(table);
    }
    const note = el("p", "states-note",
      "Hover a name for its definition and formula. “—” means it cannot be estimated now; the reason follows.");
    c.statesBody.replaceChildren(note, ...parts);
    c.stateRows = rows;
  }

  function renderStates(p) {
    const c = p.card;
    if (!c.stateRows) buildStates(p);
    const s = p.state;
    for (const ref of c.stateRows.values()) {
      const r = reading(s, ref.d.name);
      const v = r ? r.value : null;
      const has = isNum(v);
      const fixed = notEstimable(ref.d);
      const valueText = has ? fmtValue(ref.d, v) : fixed ? "not estimable" : DASH;
      const why = has ? (r.reason || "") : (r && r.reason) || ref.d.null_reason || (s ? "" : "no state yet");
      const cfText = has ? conf(r.confidence) : DASH;
      const key = `${valueText}\u0000${why}\u0000${cfText}`;
      if (key === ref.key) continue; // unchanged: no DOM writes
      ref.key = key;
      setText(ref.value, valueText);
      setText(ref.why, why);
      setAttr(ref.why, "title", why || null);
      setText(ref.cf, cfText);
      setClass(ref.tr, "is-null", !has);
    }
  }

  function updateAge(p) {
    const c = p.card;
    if (!c) return;
    if (!p.state) { setText(c.updated, "no update yet"); return; }
    setText(c.updated, ago(Math.max(0, serverNow() - Number(p.state.ts))));
  }

  // ---------- order and mode ----------
  function engKey(p) {
    const v = sortKeys.get(p.info.participant_id);
    return isNum(v) ? v : null;
  }

  function currentSort() {
    return sortChoice || (compact ? "engagement" : "joined");
  }

  function compareTop(a, b) {
    const al = a.info.left_at != null, bl = b.info.left_at != null;
    if (al !== bl) return al ? 1 : -1;
    if (al) return b.info.left_at - a.info.left_at; // most recently left first
    const sort = currentSort();
    if (sort === "engagement" || sort === "engagement-desc") {
      const ea = engKey(a), eb = engKey(b);
      if ((ea == null) !== (eb == null)) return ea == null ? 1 : -1; // unknown after known
      if (ea != null && ea !== eb) return sort === "engagement" ? ea - eb : eb - ea;
    } else if (sort === "name") {
      const c = (a.info.display_name || "").localeCompare(b.info.display_name || "");
      if (c) return c;
    }
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

  // Top-level participants in the chosen order, each followed by the faces of its camera.
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
    for (const p of all) add(p); // parent cycles: never lose an entry
    return out;
  }

  let order = [];
  function layout(nowMs) {
    const present = Array.from(people.values()).filter((p) => p.info.left_at == null).length;
    const wantCompact = viewChoice ? viewChoice === "compact" : present > COMPACT_AFTER;
    if (wantCompact !== compact) {
      compact = wantCompact;
      exposed.compact = compact;
      setClass(listEl, "is-compact", compact);
      setAttr(viewBtn, "aria-pressed", compact ? "true" : "false");
      setText(viewBtn, compact ? "Full cards" : "Compact rows");
      if (!sortChoice) sortEl.value = currentSort();
      for (const p of people.values()) p.dirty = true;
      chartsDue = true;
    }
    const sort = currentSort();
    const byEngagement = sort === "engagement" || sort === "engagement-desc";
    let resort = listDirty;
    if (byEngagement && nowMs - sortKeysAt >= SORT_MIN_MS) {
      const keys = new Map();
      let changed = false;
      for (const p of people.values()) {
        const r = reading(p.state, LEAD);
        const v = r && isNum(r.value) ? r.value : null;
        keys.set(p.info.participant_id, v);
        if (sortKeys.get(p.info.participant_id) !== v) changed = true;
      }
      if (changed || keys.size !== sortKeys.size) { sortKeys = keys; resort = true; }
      sortKeysAt = nowMs;
    }
    if (resort) order = sortedPeople();
    listDirty = false;

    for (const p of order) {
      if (!p.item) buildItem(p);
      const showCard = !compact || p.expanded;
      setHidden(p.row.row, !compact);
      setClass(p.item, "is-left", p.info.left_at != null);
      setClass(p.item, "is-sub", !!p.info.parent_id);
      setClass(p.item, "is-expanded", compact && p.expanded);
      if (p.dirty) {
        if (compact) renderRow(p);
        if (showCard) renderCard(p);
        p.dirty = false; // a hidden card or row is marked dirty again when shown
      }
      if (p.card) setHidden(p.card.card, !showCard);
      p.visible = showCard;
      if (p.reveal && p.card && showCard) {
        p.reveal = false;
        p.item.scrollIntoView({ block: "nearest" }); // an expanded row shows its card
      }
    }
    if (resort) {
      // Reorder only where needed.
      let prev = null;
      for (const p of order) {
        const node = p.item;
        const expected = prev ? prev.nextSibling : listEl.firstChild;
        if (node !== expected) listEl.insertBefore(node, expected);
        prev = node;
      }
      const live = new Set(order.map((p) => p.item));
      for (const node of Array.from(listEl.children)) if (!live.has(node)) node.remove();
    }
    const left = order.length - present;
    setHidden(emptyEl, order.length > 0);
    setHidden(toolsEl, order.length === 0);
    setHidden(legendEl, order.length === 0 || (compact && !order.some((p) => p.expanded)));
    setText(countEl, order.length ? `${present} present${left ? ` · ${left} left` : ""}` : "");
  }

  // ---------- charts (uPlot, vendored) ----------
  const hasUPlot = typeof window.uPlot === "function";
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
    if (win >= 90) return 30;
    if (win >= 60) return 15;
    return 5;
  }

  function tickLabel(secsAgo) {
    if (secsAgo === 0) return "now";
    if (secsAgo % 60 === 0) return `−${secsAgo / 60}m`;
    return `−${secsAgo}s`;
  }

  // Band shading under the plot: the low band tinted, dashed lines at the band edges.
  function drawBands(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const yLow = u.valToPos(bands[0], "y", true);
    const yHigh = u.valToPos(bands[1], "y", true);
    ctx.save();
    ctx.fillStyle = "#f7f8fa";
    ctx.fillRect(left, top, width, height);
    ctx.fillStyle = "rgba(154, 103, 0, 0.08)";
    ctx.fillRect(left, yLow, width, top + height - yLow);
    ctx.fillStyle = "rgba(26, 127, 55, 0.06)";
    ctx.fillRect(left, top, width, yHigh - top);
    ctx.strokeStyle = "rgba(0, 0, 0, 0.18)";
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    for (const y of [yLow, yHigh]) {
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + width, Math.round(y) + 0.5);
    }
    ctx.stroke();
    ctx.restore();
  }

  function xAxis() {
    return {
      size: 16,
      gap: 2,
      font: "10px system-ui, sans-serif",
      stroke: "#57606a",
      grid: { stroke: "rgba(0, 0, 0, 0.08)", width: 1 },
      ticks: { show: false },
      splits: (u) => {
        const now = serverNow();
        const tick = tickStep(historySecs);
        const out = [];
        for (let t = 0; t <= historySecs + 1e-6; t += tick) out.unshift(now - t);
        return out;
      },
      values: (u, splits) => {
        const now = serverNow();
        return splits.map((v) => tickLabel(Math.round((now - v) / 5) * 5));
      },
    };
  }

  function chartOpts(width, height, series, hooks) {
    return {
      width, height,
      padding: [4, 14, 0, 14], // room for the edge labels ("−5m", "now")
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: { x: { time: false, auto: false }, y: { auto: false, range: [0, 1] } },
      axes: [xAxis(), { show: false }],
      series,
      hooks,
    };
  }

  function personSeries() {
    const s = [{}];
    chartNames.forEach((name, i) => {
      s.push({
        label: name,
        stroke: seriesColor(i),
        width: i === 0 ? 2.25 : 1.25,
        points: { show: false },
        spanGaps: false,
      });
    });
    return s;
  }

  // No-face runs (hatched) and speaking runs (blue) as thin strips along the bottom.
  function drawStrips(u, p) {
    const h = p.hist;
    const n = h.ts.length;
    if (!n) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = window.devicePixelRatio || 1;
    const sh = Math.round(3 * dpr);
    const now = serverNow();
    const end = p.info.left_at != null ? Math.min(now, p.info.left_at) : now;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const [flags, want, style, y] of [
      [h.face, false, hatchPattern(ctx, dpr), top + height - sh],
      [h.spk, true, "#0969da", top + height - 2 * sh - 1],
    ]) {
      ctx.fillStyle = style;
      let i = 0;
      while (i < n) {
        if (flags[i] !== want) { i++; continue; }
        let j = i;
        while (j + 1 < n && flags[j + 1] === want && h.ts[j + 1] - h.ts[j] <= GAP_SECS) j++;
        const t1 = j + 1 < n ? h.ts[j + 1] : Math.min(end, h.ts[j] + GAP_SECS);
        const x0 = u.valToPos(h.ts[i], "x", true);
        const x1 = u.valToPos(Math.max(t1, h.ts[i]), "x", true);
        ctx.fillRect(x0, y, Math.max(1, x1 - x0), sh);
        i = j + 1;
      }
    }
    ctx.restore();
  }

  function personData(p) {
    return [p.hist.ts].concat(chartNames.map((k) => p.hist.v[k] || []));
  }

  function updatePersonChart(p, now) {
    const c = p.card;
    if (!hasUPlot || !c || !chartNames.length) return;
    const w = c.chartEl.clientWidth;
    if (!w) return; // not laid out (hidden)
    if (!p.chart) {
      p.chart = new window.uPlot(
        chartOpts(w, CHART_H, personSeries(), {
          drawClear: [drawBands],
          draw: [(u) => drawStrips(u, p)],
        }),
        personData(p), c.chartEl);
      p.chartVer = p.hist.ver;
    } else {
      if (p.chart.width !== w) p.chart.setSize({ width: w, height: CHART_H });
      if (p.chartVer !== p.hist.ver) {
        p.chart.setData(personData(p), false);
        p.chartVer = p.hist.ver;
      }
    }
    p.chart.setScale("x", { min: now - historySecs, max: now });
  }

  let roomChart = null;
  let roomChartVer = -1;
  function drawMoments(u) {
    if (!moments.length) return;
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = Math.max(1, dpr);
    ctx.setLineDash([2 * dpr, 2 * dpr]);
    for (const m of moments) {
      const x = Math.round(u.valToPos(m.ts, "x", true)) + 0.5;
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = MOMENT_COLORS[m.kind] || "#57606a";
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }

  function updateRoomChart(now) {
    if (!hasUPlot) return;
    const node = strip.roomChartEl;
    const w = node.clientWidth;
    if (!w) return;
    const data = [roomHist.ts, roomHist.eng];
    if (!roomChart) {
      roomChart = new window.uPlot(
        chartOpts(w, ROOM_CHART_H, [{}, {
          label: "room", stroke: LEAD_COLOR, width: 2, points: { show: false }, spanGaps: false,
          fill: "rgba(31, 35, 40, 0.06)",
        }], { drawClear: [drawBands], draw: [drawMoments] }),
        data, node);
      roomChartVer = roomHist.ver;
    } else {
      if (roomChart.width !== w) roomChart.setSize({ width: w, height: ROOM_CHART_H });
      if (roomChartVer !== roomHist.ver) { roomChart.setData(data, false); roomChartVer = roomHist.ver; }
    }
    roomChart.setScale("x", { min: now - historySecs, max: now });
  }

  // Charts in the viewport only (a 49-card page draws the few that can be seen).
  const onScreen = new WeakSet();
  const chartObserver = typeof IntersectionObserver === "function" ?
    new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) onScreen.add(e.target); else onScreen.delete(e.target);
      }
      chartsDue = true;
      scheduleRender();
    }, { rootMargin: "200px 0px" }) : null;

  function drawCharts() {
    chartsDue = false;
    const now = serverNow();
    updateRoomChart(now);
    const shown = Array.from(people.values()).filter((p) => p.card && p.visible);
    // A few cards: draw them all; many: only those near the viewport.
    const all = !chartObserver || shown.length <= COMPACT_AFTER;
    for (const p of shown) {
      if (all || onScreen.has(p.card.chartEl)) updatePersonChart(p, now);
    }
  }

  // ---------- the room and moments ----------
  function addRoomPoint(ts, engagement) {
    const n = roomHist.ts.length;
    if (!isNum(ts) || (n && ts <= roomHist.ts[n - 1])) return;
    if (n && ts - roomHist.ts[n - 1] > GAP_SECS) {
      roomHist.ts.push(roomHist.ts[n - 1] + GAP_SECS / 2);
      roomHist.eng.push(null);
    }
    roomHist.ts.push(ts);
    roomHist.eng.push(isNum(engagement) ? engagement : null);
    roomHist.ver++;
  }

  function applyRoom(r) {
    if (!r || typeof r !== "object") return;
    if (room && isNum(room.ts) && isNum(r.ts) && r.ts < room.ts) return;
    const trendsChanged = JSON.stringify((room && room.trends) || {}) !== JSON.stringify(r.trends || {});
    room = r;
    exposed.room = r;
    addRoomPoint(Number(r.ts), r.engagement);
    roomDirty = true;
    if (trendsChanged) for (const p of people.values()) p.dirty = true;
  }

  function addMoment(m) {
    if (!m || typeof m !== "object" || !isNum(m.ts)) return false;
    if (moments.some((x) => x.ts === m.ts && x.kind === m.kind)) return false;
    moments.push(m);
    moments.sort((a, b) => a.ts - b.ts);
    const cutoff = serverNow() - historySecs - 30;
    while (moments.length > 200 || (moments.length && moments[0].ts < cutoff)) moments.shift();
    exposed.moments = moments;
    roomDirty = true;
    return true;
  }

  function momentText(m) {
    const who = namesOf(m.participants);
    switch (m.kind) {
      case "engagement_drop":
        return `${who || "Room"} engagement fell ${num(Math.abs(m.value), 2)} within ${span(m.window_secs)}`;
      case "engagement_rise":
        return `${who || "Room"} engagement rose ${num(Math.abs(m.value), 2)} within ${span(m.window_secs)}`;
      case "long_silence":
        return `${who || "Someone"} silent for ${span(m.value)} while others spoke`;
      case "joint_smiles":
        return `${who || `${Math.round(m.value)} faces`} smiled at the same time`;
      case "media_gap":
        // The bot lost the stream and got it back: a pause in the media, not in the person.
        return `${who ? `${who}'s` : "A participant's"} media paused ` +
          `${isNum(m.value) && m.value < 1 ? "under a second" : span(m.value)} (reconnecting)`;
      default:
        return String(m.kind || "moment").replace(/_/g, " ");
    }
  }

  function speakingText(ids, kind) {
    // Nothing was heard during a media gap: who spoke then is unknown, not "no one".
    if (kind === "media_gap") return "";
    return Array.isArray(ids) && ids.length ? `while ${namesOf(ids)} spoke` : "no one speaking";
  }

  function renderRoom() {
    roomDirty = false;
    const r = room;
    setHidden(strip.room, !r);
    if (r) {
      const b = band(r.engagement);
      setData(strip.roomBand, "band", b);
      setText(strip.roomBand, b === "unknown" ? "unknown" : b);
      setText(strip.roomEng, isNum(r.engagement) ? num(r.engagement, 2) : DASH);
      renderTrend(strip.roomTrend, r.trend, r.trend_change);
      setText(strip.roomMood, r.mood ? `mood: ${r.mood}` : "mood: —");
      const bits = [];
      if (isNum(r.engagement_n) && isNum(r.present)) bits.push(`over ${r.engagement_n} of ${r.present} present`);
      if (r.dominant) bits.push(`most show ${r.dominant}`);
      if (isNum(r.valence)) bits.push(`valence ${signed(r.valence, 2)}`);
      if (isNum(r.arousal)) bits.push(`arousal ${signed(r.arousal, 2)}`);
      setText(strip.roomNote, bits.join(" · "));
    } else {
      setText(strip.roomNote, "");
    }
    // Moments, newest first: rebuilt only when the list (or a name in it) changes.
    const shown = moments.slice(-MOMENTS_SHOWN).reverse();
    const texts = shown.map((m) => [m, momentText(m), speakingText(m.speaking, m.kind)]);
    const key = texts.map(([m, a, b]) => `${m.ts}\u0000${a}\u0000${b}`).join("\u0001");
    if (key !== strip.momentsKey) {
      strip.momentsKey = key;
      strip.moments.replaceChildren(...texts.map(([m, what, who]) => {
        const li = el("li", "moment");
        li.dataset.kind = String(m.kind);
        const glyph = el("span", "m-glyph", MOMENT_GLYPHS[m.kind] || "•");
        glyph.setAttribute("aria-hidden", "true");
        glyph.style.color = MOMENT_COLORS[m.kind] || "";
        const time = el("time", "m-time", clockTime(m.ts));
        time.dateTime = new Date((m.ts - clockOffset) * 1000).toISOString();
        const body = el("span", "m-body");
        body.append(el("span", "m-what", what), " ", el("span", "m-who", who));
        li.append(glyph, time, body);
        return li;
      }));
    }
    setHidden(strip.momentsNone, shown.length > 0);
    renderStripVisibility();
  }

  function renderStripVisibility() {
    setHidden(strip.root, !room && !talk && !moments.length);
  }

  // ---------- conversation strip ----------
  function renderTalk() {
    talkDirty = false;
    const t = talk;
    setHidden(strip.talkPart, !t);
    renderStripVisibility();
    if (!t) { setText(strip.duration, DASH); return; }

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

    // Talk share: one segment per participant, in join order (stable, no jumping).
    const entries = new Map();
    for (const e of Array.isArray(t.participants) ? t.participants : []) {
      if (e && e.participant_id != null) entries.set(String(e.participant_id), e);
    }
    const ordered = Array.from(people.values()).sort((a, b) => a.info.joined_at - b.info.joined_at)
      .map((p) => p.info.participant_id).filter((id) => entries.has(id));
    for (const id of entries.keys()) if (!ordered.includes(id)) ordered.push(id);
    let total = 0;
    for (const id of ordered) {
      const sh = entries.get(id).talk_share;
      if (isNum(sh) && sh > 0) total += sh;
    }
    const labels = [];
    const seen = new Set();
    let prevSeg = null;
    let prevLi = null;
    for (const id of ordered) {
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
      setStyle(ref.sw, "background", bg);
      const sh = isNum(e.talk_share) && e.talk_share > 0 ? e.talk_share : 0;
      const frac = total > 0 ? sh / total : 0;
      setWidth(ref.seg, frac);
      setHidden(ref.seg, frac <= 0);
      // A legend entry for everyone who spoke; silent ones stay out of a 49-person legend.
      setHidden(ref.li, sh <= 0 && entries.size > COMPACT_AFTER);
      const nm = nameOf(id);
      setText(ref.segText, `${nm} ${pct(e.talk_share)}`);
      setAttr(ref.seg, "title", `${nm}: ${pct(e.talk_share)} of speech, ${duration(e.talk_secs)}`);
      setText(ref.name, nm);
      setText(ref.value, `${pct(e.talk_share)} · ${duration(e.talk_secs)}`);
      setClass(ref.li, "is-speaking", ids.includes(id));
      if (sh > 0 || entries.size <= COMPACT_AFTER) labels.push(`${nm} ${pct(e.talk_share)}`);
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
      if (p && p.card) p.dirty = true; // the card's talk tile; rows do not show talk
    }
    talkDirty = true;
  }

  // ---------- mood summaries: newest first, each built once (server text via textContent) ----------
  const SUMMARIES_SHOWN = 20;
  const REASON_TEXT = { interval: "", end: "at the end", request: "on request" };
  let summaries = []; // newest first

  function setSummarizer(info) {
    if (!info || typeof info !== "object") return;
    exposed.summarizer = info;
    setData(feed.who, "summarizer", String(info.name || "unknown"));
    const every = isNum(info.interval_secs) ? ` every ${span(info.interval_secs)}` : "";
    // The server says where the summarizer runs and what leaves the machine.
    const where = info.where ? `; ${info.where}`
      : info.name === "local" ? "; nothing leaves this machine" : "";
    const off = info.enabled === false;
    setHidden(feed.button, off);
    const active = `Active: ${info.label || info.name}${every}${where}.`;
    setText(feed.who, off ? "Summaries are turned off." : active);
  }

  function summaryItem(sm) {
    const li = el("li", "summary");
    li.dataset.summaryId = String(sm.id);
    li.dataset.source = String(sm.source || "");
    setClass(li, "is-error", !!sm.error);
    const meta = el("p", "sum-meta");
    const start = Number(sm.window_start);
    const end = Number(sm.window_end);
    const hms = (ts) => new Date((ts - clockOffset) * 1000).toLocaleTimeString(
      [], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const when = isFinite(start) && isFinite(end) ? `${hms(start)}–${hms(end)}` : DASH;
    meta.append(el("span", "sum-when", when), el("span", "sum-source", String(sm.label || sm.source)));
    const reason = REASON_TEXT[sm.reason];
    if (reason) meta.append(el("span", "sum-reason", reason));
    li.append(meta);
    if (sm.note) li.append(el("p", "sum-note", String(sm.note)));
    if (sm.error) {
      li.append(el("p", "sum-error", String(sm.error)));
      return li;
    }
    const people = el("ul", "sum-people");
    for (const p of Array.isArray(sm.participants) ? sm.participants : []) {
      const item = el("li", "sum-person", String(p.text || ""));
      item.dataset.participantId = String(p.participant_id);
      item.dataset.band = String(p.engagement_band || "unknown");
      people.append(item);
    }
    if (people.children.length) li.append(people);
    if (sm.room_mood) li.append(el("p", "sum-mood", String(sm.room_mood)));
    const changes = el("ul", "sum-changes");
    for (const c of Array.isArray(sm.changes) ? sm.changes : []) changes.append(el("li", null, String(c)));
    if (changes.children.length) li.append(changes);
    if (sm.suggestion) li.append(el("p", "sum-suggestion", `Suggestion: ${sm.suggestion}`));
    return li;
  }

  function renderSummaries() {
    const nodes = summaries.map((sm) => {
      if (!sm.node) sm.node = summaryItem(sm);
      return sm.node;
    });
    feed.list.replaceChildren(...nodes);
    setHidden(feed.none, summaries.length > 0);
    exposed.summaries = summaries.map(({ node, ...rest }) => rest);
  }

  function addSummary(sm) {
    if (!sm || typeof sm !== "object" || sm.id == null) return false;
    if (summaries.some((x) => x.id === sm.id)) return false;
    summaries.push(Object.assign({}, sm));
    summaries.sort((a, b) => Number(b.ts) - Number(a.ts));
    summaries = summaries.slice(0, SUMMARIES_SHOWN);
    return true;
  }

  feed.button.addEventListener("click", async () => {
    feed.button.disabled = true;
    setText(feed.status, "Summarizing…");
    try {
      const resp = await fetch(`/api/meetings/${encodeURIComponent(meetingId)}/summaries`, {
        method: "POST",
      });
      const body = await resp.json().catch(() => null);
      if (!resp.ok || !body) {
        const why = body && body.error && body.error.message ? body.error.message : resp.statusText;
        setText(feed.status, `Could not summarize: ${why}`);
      } else {
        setText(feed.status, "");
        if (addSummary(body)) renderSummaries();
      }
    } catch (e) {
      setText(feed.status, "Could not summarize: no connection to the server.");
    } finally {
      feed.button.disabled = false;
    }
  });

  // ---------- meeting report downloads (authorised by the host cookie, never a token in a link) ----------
  const reportStatus = document.getElementById("report-status");
  const reportButtons = Array.from(document.querySelectorAll("[data-report-format]"));

  function downloadName(resp, format) {
    const header = resp.headers.get("Content-Disposition") || "";
    const m = /filename="([^"]+)"/.exec(header);
    return m ? m[1] : `meetmood-report.${format}`;
  }

  async function downloadReport(format, button) {
    reportButtons.forEach((b) => { b.disabled = true; });
    setText(reportStatus, `Preparing the ${format.toUpperCase()} report…`);
    try {
      const resp = await fetch(
        `/api/meetings/${encodeURIComponent(meetingId)}/report?format=${encodeURIComponent(format)}`,
      );
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        const why = body && body.error && body.error.message ? body.error.message : resp.statusText;
        setText(reportStatus, `Could not make the report: ${why}`);
        return;
      }
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = downloadName(resp, format);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setText(reportStatus, `Downloaded ${a.download}.`);
    } catch (e) {
      setText(reportStatus, "Could not make the report: no connection to the server.");
    } finally {
      reportButtons.forEach((b) => { b.disabled = false; });
      if (button) button.focus();
    }
  }

  reportButtons.forEach((b) => {
    b.addEventListener("click", () => downloadReport(b.dataset.reportFormat, b));
  });

  // ---------- ending and deleting the meeting (authorised by the host cookie) ----------
  const endBtn = document.getElementById("end-meeting");
  const deleteBtn = document.getElementById("delete-meeting");
  const meetingStatus = document.getElementById("meeting-status");
  let ended = null; // null while the meeting runs; "ended" or "deleted" after
  let withdrawals = 0;

  function removeParticipant(id) {
    const p = people.get(id);
    if (!p) return;
    dropCard(p);
    if (p.item) p.item.remove();
    people.delete(id);
    delete exposed.participants[id];
    listDirty = true;
  }

  // A participant withdrew: their cards, their moments and their lines of the summaries go.
  function handleWithdrawn(msg) {
    const ids = new Set((Array.isArray(msg.participant_ids) ? msg.participant_ids : []).map(String));
    for (const id of ids) removeParticipant(id);
    moments = moments
      .filter((m) => !(Array.isArray(m.participants) && m.participants.length &&
                       m.participants.every((id) => ids.has(String(id)))))
      .map((m) => Object.assign({}, m, {
        participants: (m.participants || []).filter((id) => !ids.has(String(id))),
        speaking: (m.speaking || []).filter((id) => !ids.has(String(id))),
      }));
    exposed.moments = moments;
    summaries = [];
    for (const sm of Array.isArray(msg.summaries) ? msg.summaries : []) addSummary(sm);
    renderSummaries();
    withdrawals += 1;
    const text = withdrawals === 1 ? "A participant left and had their data deleted."
      : `${withdrawals} participants left and had their data deleted.`;
    addNotice({ code: "participant_withdrawn", text });
    announce(text);
    roomDirty = true;
    talkDirty = true;
    chartsDue = true;
  }

  function meetingEnded(deleted) {
    ended = deleted ? "deleted" : "ended";
    exposed.ended = ended;
    clearTimeout(retryTimer);
    retryTimer = null;
    endBtn.disabled = true;
    if (!deleted) {
      setConn("ended", "Meeting ended");
      setText(meetingStatus, "The meeting has ended: everyone was disconnected and the join " +
              "link no longer works. The report stays available until the meeting is deleted.");
      return;
    }
    deleteBtn.disabled = true;
    setConn("ended", "Meeting deleted");
    for (const id of Array.from(people.keys())) removeParticipant(id);
    summaries = [];
    renderSummaries();
    moments = [];
    exposed.moments = moments;
    // Nothing of the meeting is left to show or download.
    for (const section of root.querySelectorAll("section")) {
      if (section.id !== "meeting-panel") section.hidden = true;
    }
    for (const b of endBtn.parentElement.querySelectorAll("button")) b.hidden = true;
    setText(meetingStatus, "This meeting and everything stored about it were deleted.");
    announce("Meeting deleted");
  }

  async function meetingRequest(method, path, doing) {
    setText(meetingStatus, doing);
    try {
      const resp = await fetch(`/api/meetings/${encodeURIComponent(meetingId)}${path}`, { method });
      if (resp.ok) return true;
      const body = await resp.json().catch(() => null);
      const why = body && body.error && body.error.message ? body.error.message : resp.statusText;
      setText(meetingStatus, `Could not do it: ${why}`);
    } catch (e) {
      setText(meetingStatus, "Could not do it: no connection to the server.");
    }
    return false;
  }

  endBtn.addEventListener("click", async () => {
    if (!window.confirm("End the meeting? Everyone is disconnected and the join link stops " +
                        "working. The data stays for the report.")) return;
    endBtn.disabled = true;
    if (await meetingRequest("POST", "/end", "Ending the meeting…")) meetingEnded(false);
    else if (!ended) endBtn.disabled = false;
  });

  deleteBtn.addEventListener("click", async () => {
    if (!window.confirm("Delete the meeting and everything stored about it (participants, " +
                        "scores, summaries)? This cannot be undone.")) return;
    deleteBtn.disabled = true;
    endBtn.disabled = true;
    if (await meetingRequest("DELETE", "", "Deleting the meeting…")) meetingEnded(true);
    else {
      deleteBtn.disabled = false;
      endBtn.disabled = !!ended;
    }
  });

  // ---------- questions about the meeting: newest answer first (server text via textContent) ----------
  const ANSWERS_SHOWN = 10;
  const ask = {
    form: document.getElementById("ask-form"),
    input: document.getElementById("ask-input"),
    button: document.getElementById("ask-button"),
    status: document.getElementById("ask-status"),
    list: document.getElementById("answers"),
  };
  exposed.answers = [];

  function answerItem(res) {
    const a = res && typeof res.answer === "object" && res.answer ? res.answer : {};
    const li = el("li", "answer");
    li.dataset.kind = String(a.kind || "unknown");
    li.dataset.answered = String(a.answered !== false);
    li.dataset.source = String(res.source || "");
    li.append(el("p", "ans-question", String(res.question || "")));
    li.append(el("p", "ans-text", String(a.text || "")));
    const meta = el("p", "ans-meta");
    const range = a.range && typeof a.range === "object" ? a.range : null;
    if (range && range.text) meta.append(el("span", "ans-range", `Looked at ${range.text}`));
    meta.append(el("span", "ans-source", String(res.label || res.source || "")));
    li.append(meta);
    if (a.note) li.append(el("p", "ans-note", String(a.note)));
    return li;
  }

  ask.form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const question = ask.input.value.trim();
    if (!question) {
      setText(ask.status, "Type a question first.");
      ask.input.focus();
      return;
    }
    ask.button.disabled = true;
    setText(ask.status, "Answering…");
    try {
      const resp = await fetch(`/api/meetings/${encodeURIComponent(meetingId)}/questions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question }),
      });
      const body = await resp.json().catch(() => null);
      if (!resp.ok || !body) {
        const why = body && body.error && body.error.message ? body.error.message : resp.statusText;
        setText(ask.status, `Could not answer: ${why}`);
      } else {
        ask.list.prepend(answerItem(body));
        while (ask.list.children.length > ANSWERS_SHOWN) ask.list.lastElementChild.remove();
        exposed.answers = [body, ...exposed.answers].slice(0, ANSWERS_SHOWN);
        ask.input.value = "";
        setText(ask.status, "");
        announce("Answer ready");
      }
    } catch (e) {
      setText(ask.status, "Could not answer: no connection to the server.");
    } finally {
      ask.button.disabled = false;
    }
  });

  // ---------- the server's models: loading at start-up, then ready ----------
  // The server answers while its models load; participants who join meanwhile are analysed
  // as soon as they are. Until then a line says so, and faces read "analysis starting"
  // (no face analysed yet is not "no face").
  function setModels(m) {
    const starting = !!m && typeof m === "object" && m.state === "starting";
    const analyzers = starting && m.analyzers && typeof m.analyzers === "object" ? m.analyzers : {};
    exposed.models = starting ? "starting" : "ready";
    const face = starting && analyzers.face_emotion === "starting";
    if (face !== faceStarting) {
      faceStarting = face;
      for (const p of people.values()) p.dirty = true;
      listDirty = true;
    }
    if (starting && !modelsItem) {
      modelsItem = el("p", "notice-item");
      modelsItem.dataset.code = "models_starting";
      const icon = el("span", "notice-icon", "…");
      icon.setAttribute("aria-hidden", "true");
      modelsItem.append(icon, el("span", "notice-text"));
      noticesEl.prepend(modelsItem);
    }
    if (modelsItem) {
      // Faces analysed already: only the voice's tone waits for its model.
      const voiceOnly = !face && analyzers.voice_emotion === "starting";
      setText(modelsItem.lastChild, voiceOnly ? VOICE_STARTING_TEXT : STARTING_TEXT);
      modelsItem.hidden = !starting;
    }
    setHidden(noticesEl, !Array.from(noticesEl.children).some((x) => !x.hidden));
  }

  // ---------- the server's load ----------
  // Once a second: the face rate every participant gets now (lowered evenly when the server
  // is busy, instead of readings arriving late), CPU and memory of the server's processes.
  const loadEl = document.getElementById("load");
  const loadBusyEl = document.getElementById("load-busy");
  const loadTextEl = document.getElementById("load-text");
  function setLoad(m) {
    if (!loadEl || !m || typeof m !== "object") return;
    const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
    const parts = [];
    const rate = num(m.face_fps_mean);
    const target = num(m.face_fps_target);
    if (rate !== null && num(m.feeds)) {
      parts.push(`faces ${rate.toFixed(1)}/s each` + (target !== null ? ` (up to ${target.toFixed(0)})` : ""));
    }
    const cpu = num(m.cpu_percent);
    if (cpu !== null) parts.push(`CPU ${Math.round(cpu)} % of ${num(m.cpus) || 1} core${num(m.cpus) === 1 ? "" : "s"}`);
    const rss = num(m.rss_mb);
    if (rss !== null) parts.push(`${Math.round(rss)} MB`);
    const busy = !!m.busy;
    loadEl.dataset.busy = String(busy);
    loadBusyEl.textContent = busy ? (typeof m.text === "string" && m.text ? m.text : "analysis rate reduced: server busy") : "";
    loadTextEl.textContent = (busy ? " · " : "Server: ") + parts.join(" · ");
    setHidden(loadEl, parts.length === 0 && !busy);
    exposed.load = { busy, text: loadBusyEl.textContent, line: loadEl.textContent };
  }

  // ---------- notices ----------
  // Join attempts whose connection never came up are not people: only their number shows.
  function showUnconnectedJoins(count) {
    const n = Number(count);
    exposed.unconnectedJoins = isFinite(n) && n > 0 ? n : 0;
    if (!exposed.unconnectedJoins) return;
    addNotice({
      code: "unconnected_joins",
      text: `${n} join attempt${n === 1 ? "" : "s"} did not connect (not shown as participants)`,
    });
  }

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
  let agesDue = false;
  function renderNow() {
    renderQueued = false;
    const t0 = performance.now();
    lastRender = t0;
    layout(t0);
    if (talkDirty) renderTalk();
    if (roomDirty) renderRoom();
    if (agesDue) {
      agesDue = false;
      for (const p of people.values()) if (p.visible) updateAge(p);
    }
    if (chartsDue) drawCharts();
    const dt = performance.now() - t0;
    stats.frames += 1;
    stats.renderMs += dt;
    sample(stats.renderSamples, dt);
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    const wait = lastRender + RENDER_MIN_MS - performance.now();
    if (wait > 0) setTimeout(() => requestAnimationFrame(renderNow), wait);
    else requestAnimationFrame(renderNow);
  }

  // ---------- periodic tick: time moves on (charts scroll, "updated … ago") ----------
  setInterval(() => {
    if (document.hidden) return;
    const now = serverNow();
    for (const p of people.values()) {
      const before = p.hist.ver;
      trimHist(p.hist, now);
      if (compact && p.hist.ver !== before) p.dirty = true; // the row's "what moved"
    }
    trimHist(roomHist, now);
    agesDue = true;
    chartsDue = true;
    scheduleRender();
  }, TICK_MS);

  window.addEventListener("resize", () => {
    chartsDue = true;
    scheduleRender();
  });

  // ---------- messages ----------
  function handleSnapshot(msg) {
    if (typeof msg.server_ts === "number") clockOffset = msg.server_ts - Date.now() / 1000;
    if (Number(msg.history_secs) > 0) historySecs = Number(msg.history_secs);
    if (msg.meeting && typeof msg.meeting.name === "string") {
      titleEl.textContent = msg.meeting.name;
      document.title = `${msg.meeting.name} · meetmood sidebar`;
    }
    if (Array.isArray(msg.engagement_bands) && msg.engagement_bands.length === 2 &&
        msg.engagement_bands.every(isNum)) {
      bands = [Number(msg.engagement_bands[0]), Number(msg.engagement_bands[1])];
    }
    setDefinitions(msg.definitions);
    // Participants: the snapshot replaces ours; entries (and their DOM) of known ids are reused.
    const seen = new Set();
    exposed.participants = {};
    for (const info of Array.isArray(msg.participants) ? msg.participants : []) {
      if (!info || info.participant_id == null) continue;
      const id = String(info.participant_id);
      const old = people.get(id);
      if (old) { old.state = null; old.hist = newHist(); old.chartVer = -1; old.dirty = true; }
      const p = upsertParticipant(Object.assign({}, info, { state: null }));
      seen.add(id);
      const hist = msg.history && msg.history[id];
      if (Array.isArray(hist)) {
        for (const hp of hist) {
          const ts = Number(hp && hp.ts);
          if (!isFinite(ts)) continue;
          addPoint(p, ts, hp.face_visible, hp.is_speaking, (k) => hp[k]);
        }
      }
      if (info.state) applyState(p, info.state, true);
      trimHist(p.hist, serverNow());
      publish(p);
    }
    for (const [id, p] of people) {
      if (seen.has(id)) continue;
      dropCard(p);
      if (p.item) p.item.remove();
      people.delete(id);
    }
    listDirty = true;
    // Room, moments and talk figures replace ours (null: none yet); notices only add up.
    room = null;
    exposed.room = null;
    roomHist.ts = [];
    roomHist.eng = [];
    roomHist.ver++;
    for (const rp of Array.isArray(msg.room_history) ? msg.room_history : []) {
      if (rp) addRoomPoint(Number(rp.ts), rp.engagement);
    }
    if (msg.room) applyRoom(msg.room);
    moments = [];
    for (const m of Array.isArray(msg.moments) ? msg.moments : []) addMoment(m);
    exposed.moments = moments;
    talk = null;
    exposed.talk = null;
    talkById.clear();
    if (msg.talk) applyTalk(msg.talk);
    talkDirty = true;
    roomDirty = true;
    chartsDue = true;
    for (const n of Array.isArray(msg.notices) ? msg.notices : []) addNotice(n);
    setModels(msg.models);
    setLoad(msg.load);
    showUnconnectedJoins(msg.unconnected_joins);
    root.dispatchEvent(new CustomEvent("meetmood:bots", {
      detail: Array.isArray(msg.bots) ? msg.bots : [],
    }));
    setSummarizer(msg.summarizer);
    summaries = [];
    for (const sm of Array.isArray(msg.summaries) ? msg.summaries : []) addSummary(sm);
    renderSummaries();
    sortKeysAt = -Infinity;
    if (msg.meeting && msg.meeting.ended_at != null && !ended) meetingEnded(false);
  }

  function handleMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "snapshot":
        handleSnapshot(msg);
        break;
      case "participant_joined": {
        if (!msg.participant || msg.participant.participant_id == null) return;
        const p = upsertParticipant(msg.participant);
        announce(`${p.info.display_name || "Someone"} joined`);
        if (talk) talkDirty = true; // names in the strip
        if (moments.length) roomDirty = true;
        break;
      }
      case "participant_left": {
        const p = people.get(String(msg.participant_id));
        if (!p) return;
        p.info.left_at = Number(msg.ts) || serverNow();
        p.info.leave_reason = msg.reason == null ? null : String(msg.reason);
        p.dirty = true;
        listDirty = true;
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
      case "room":
        applyRoom(msg.room);
        break;
      case "moment":
        if (addMoment(msg.moment)) {
          const who = speakingText(msg.moment.speaking, msg.moment.kind);
          announce(who ? `${momentText(msg.moment)}, ${who}` : momentText(msg.moment));
          chartsDue = true;
        }
        break;
      case "summary":
        if (addSummary(msg)) {
          renderSummaries();
          announce(msg.error ? "A summary could not be made" : "New summary");
        }
        return; // rendered at once; about once a minute
      case "notice":
        addNotice(msg);
        return; // shown at once; rare
      case "models":
        setModels(msg);
        break;
      case "load":
        setLoad(msg);
        return; // its own line; nothing else to draw
      case "bot":
        // The invite panel (bots.js) keeps the bots' list; it hears them from this socket.
        root.dispatchEvent(new CustomEvent("meetmood:bot", { detail: msg.bot }));
        return;
      case "join_attempts":
        showUnconnectedJoins(msg.unconnected);
        return;
      case "participant_withdrawn":
        handleWithdrawn(msg);
        break;
      case "meeting_ended":
        if (ended !== "deleted") meetingEnded(!!msg.deleted);
        break;
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
    return `${proto}//${location.host}/api/meetings/${encodeURIComponent(meetingId)}/ws`;
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
    if (exposed.socketState !== "offline" && exposed.socketState !== "refused") {
      setConn(failures ? "reconnecting" : "connecting", failures ? "Reconnecting…" : "Connecting…");
    }
    sock.addEventListener("open", () => {
      openedAt = Date.now();
    });
    sock.addEventListener("message", (ev) => {
      if (sock !== ws) return;
      const t0 = performance.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "snapshot") {
        gotSnapshot = true;
        failures = 0;
        setConn("live", "Live");
      }
      handleMessage(msg);
      const dt = performance.now() - t0;
      stats.messages += 1;
      stats.handlerMs += dt;
      sample(stats.handlerSamples, dt);
    });
    sock.addEventListener("close", (ev) => {
      if (sock !== ws) return;
      ws = null;
      if (ended) return; // the meeting is over: nothing to reconnect to
      if (gotSnapshot && Date.now() - openedAt >= GOOD_CONNECTION_MS) backoff = BACKOFF_MIN_MS;
      scheduleReconnect();
      if (ev.code === TOO_MANY_SIDEBARS) {
        // The server's limit of open sidebars for this meeting: say so instead of "offline".
        setConn("refused", "Too many sidebars are open for this meeting — close one; retrying");
      }
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

  // ---------- list controls ----------
  sortEl.addEventListener("change", () => {
    sortChoice = sortEl.value;
    sortKeysAt = -Infinity;
    listDirty = true;
    scheduleRender();
  });
  viewBtn.addEventListener("click", () => {
    viewChoice = compact ? "cards" : "compact";
    listDirty = true;
    scheduleRender();
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

  sortEl.value = currentSort();
  layout(performance.now());
  renderTalk();
  renderRoom();
  connect();
})();
