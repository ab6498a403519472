// bots.js: the host page's "Invite the bot" panel. A form sends meetmood into a Janus
// VideoRoom or pulls a WHEP stream (POST /api/meetings/{id}/bots, authorised by the host
// cookie like every other call of the sidebar), and a list shows each bot with its state,
// where it went and a Remove button (DELETE /api/meetings/{id}/bots/{bot_id}).
// The list follows the sidebar's socket: sidebar.js re-dispatches the snapshot's `bots` as a
// "meetmood:bots" event and each `bot` message as "meetmood:bot" on the #sidebar element, so
// this file needs no socket of its own. Loaded before sidebar.js, so that the listeners exist
// before the first message can arrive.
// Server text only ever reaches the page through textContent / attributes, never innerHTML.
"use strict";

(() => {
  const root = document.getElementById("sidebar");
  const form = document.getElementById("bot-form");
  if (!root || !form) return;

  const meetingId = root.dataset.meetingId || "";
  const api = `/api/meetings/${encodeURIComponent(meetingId)}/bots`;
  const ACTIVE = new Set(["connecting", "in_room", "reconnecting"]);

  const urlInput = document.getElementById("bot-url");
  const roomInput = document.getElementById("bot-room");
  const pinInput = document.getElementById("bot-pin");
  const tokenInput = document.getElementById("bot-token");
  const displayInput = document.getElementById("bot-display");
  const submitBtn = document.getElementById("bot-submit");
  const statusEl = document.getElementById("bot-status");
  const errorEl = document.getElementById("bot-error");
  const listEl = document.getElementById("bots");
  const noneEl = document.getElementById("bots-none");
  const listStatus = document.getElementById("bots-status");
  // The page's visually hidden live region: a bot's state changes are said, not shown twice.
  const announcer = document.getElementById("announcer");
  const kindInputs = Array.from(form.querySelectorAll('input[name="bot-kind"]'));
  const kindFields = Array.from(form.querySelectorAll("[data-bot-kind]"));

  // bot_id -> BotInfo, as the server last described it.
  const bots = new Map();
  // Exposed for tests.
  const exposed = { bots: [] };
  window.sidebarBots = exposed;

  function kind() {
    const checked = kindInputs.find((i) => i.checked);
    return checked ? checked.value : "janus";
  }

  // Janus fields (room, pin) and WHEP fields (token) show for their kind only; the display
  // name's placeholder is the server's default for that kind.
  function showKind() {
    const k = kind();
    for (const node of kindFields) node.hidden = node.dataset.botKind !== k;
    displayInput.placeholder = displayInput.dataset[k === "whep" ? "defaultWhep" : "defaultJanus"] || "";
    urlInput.placeholder = k === "whep" ? "https://whep.example.org/whep/stream"
      : "https://janus.example.org/janus";
  }

  function setError(text, field) {
    errorEl.textContent = text || "";
    errorEl.hidden = !text;
    for (const input of [urlInput, roomInput]) input.removeAttribute("aria-invalid");
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function setBusy(busy) {
    submitBtn.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
    submitBtn.textContent = busy ? "Joining…" : "Invite the bot";
  }

  // The request body: only the fields of the chosen kind, blanks left out.
  function requestBody() {
    const k = kind();
    const body = { kind: k, url: urlInput.value.trim() };
    const display = displayInput.value.trim();
    if (display) body.display = display;
    if (k === "janus") {
      body.room = roomInput.value.trim();
      if (pinInput.value) body.pin = pinInput.value;
    } else if (tokenInput.value.trim()) {
      body.token = tokenInput.value.trim();
    }
    return body;
  }

  async function errorMessage(resp) {
    const body = await resp.json().catch(() => null);
    return body && body.error && body.error.message ? String(body.error.message)
      : `${resp.status} ${resp.statusText}`.trim();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = requestBody();
    if (!body.url) { setError("Enter the URL of the Janus server or WHEP endpoint.", urlInput); return; }
    if (body.kind === "janus" && !body.room) { setError("Enter the VideoRoom's id.", roomInput); return; }
    setError("");
    setBusy(true);
    statusEl.textContent = body.kind === "janus" ? "The bot is joining the room… this can take a few seconds."
      : "Pulling the stream… this can take a few seconds.";
    try {
      const resp = await fetch(api, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!resp.ok) {
        statusEl.textContent = "";
        setError(`The bot could not join: ${await errorMessage(resp)}`);
        return;
      }
      const data = await resp.json().catch(() => null);
      if (data && data.bot) update(data.bot);
      statusEl.textContent = body.kind === "janus" ? "The bot is in the room." : "The stream is coming in.";
      pinInput.value = "";
      tokenInput.value = "";
    } catch (e) {
      statusEl.textContent = "";
      setError("The bot could not join: no connection to the server.");
    } finally {
      setBusy(false);
    }
  });

  for (const input of kindInputs) input.addEventListener("change", () => { showKind(); setError(""); });

  // ---------- the list ----------
  function stateText(b) {
    const detail = b.detail ? String(b.detail) : "";
    switch (b.state) {
      case "connecting":
        return "Connecting…";
      case "in_room": {
        const n = Number(b.participants) || 0;
        return `In room · ${n} ${n === 1 ? "person" : "people"}`;
      }
      case "reconnecting":
        return detail ? `Reconnecting… (${detail})` : "Reconnecting…";
      case "left":
        return "Left";
      case "failed":
        return detail ? `Failed: ${detail}` : "Failed";
      default:
        return String(b.state || "");
    }
  }

  function item(b) {
    const li = document.createElement("li");
    li.className = "bot";
    li.dataset.botId = String(b.bot_id);
    li.dataset.state = String(b.state);
    li.dataset.kind = String(b.kind);
    const head = document.createElement("div");
    head.className = "bot-head";
    const name = document.createElement("span");
    name.className = "bot-name";
    name.textContent = String(b.display_name || "");
    const state = document.createElement("span");
    state.className = "bot-state";
    state.textContent = stateText(b);
    head.append(name, state);
    const where = document.createElement("p");
    where.className = "bot-where";
    where.textContent = `${b.kind === "whep" ? "WHEP" : "Janus"} · ${b.where || ""}`;
    li.append(head, where);
    if (ACTIVE.has(b.state)) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn btn-small bot-remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${b.display_name || "the bot"} (${b.where || ""})`);
      remove.addEventListener("click", () => removeBot(String(b.bot_id), remove));
      li.append(remove);
    }
    return li;
  }

  // bot_id -> its <li>; an item is rebuilt only when what it shows changed, and unchanged
  // items stay in place, so a keyboard user's focus on a Remove button survives updates.
  const items = new Map();
  const shownKey = (b) => JSON.stringify([b.state, b.detail, b.participants, b.display_name, b.where]);

  function render() {
    const sorted = Array.from(bots.values()).sort((a, b) => Number(b.started_at) - Number(a.started_at));
    exposed.bots = sorted.map((b) => Object.assign({}, b));
    const wanted = sorted.map((b) => {
      const id = String(b.bot_id);
      let li = items.get(id);
      if (!li || li.dataset.key !== shownKey(b)) {
        li = item(b);
        li.dataset.key = shownKey(b);
        items.set(id, li);
      }
      return li;
    });
    wanted.forEach((li, i) => {
      const at = listEl.children[i];
      if (at !== li) listEl.insertBefore(li, at || null);
    });
    while (listEl.children.length > wanted.length) listEl.lastElementChild.remove();
    for (const id of Array.from(items.keys())) if (!bots.has(id)) items.delete(id);
    noneEl.hidden = wanted.length > 0;
  }

  function update(b) {
    if (!b || typeof b !== "object" || b.bot_id == null) return;
    const id = String(b.bot_id);
    const old = bots.get(id);
    bots.set(id, Object.assign({}, b));
    render();
    if (old && old.state !== b.state && announcer) {
      announcer.textContent = `${b.display_name || "Bot"}: ${stateText(b)}`;
    }
  }

  async function removeBot(id, button) {
    button.disabled = true;
    listStatus.textContent = "Removing the bot…";
    try {
      const resp = await fetch(`${api}/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (!resp.ok) {
        listStatus.textContent = `Could not remove the bot: ${await errorMessage(resp)}`;
        button.disabled = false;
        return;
      }
      const data = await resp.json().catch(() => null);
      if (data && data.bot) update(data.bot);
      listStatus.textContent = "The bot left.";
    } catch (e) {
      listStatus.textContent = "Could not remove the bot: no connection to the server.";
      button.disabled = false;
    }
  }

  root.addEventListener("meetmood:bots", (ev) => {
    bots.clear();
    for (const b of Array.isArray(ev.detail) ? ev.detail : []) {
      if (b && b.bot_id != null) bots.set(String(b.bot_id), Object.assign({}, b));
    }
    render();
  });
  root.addEventListener("meetmood:bot", (ev) => update(ev.detail));

  showKind();
  render();
})();
