// join.js: the participant page. Shows the notice first and touches the camera and microphone
// only after "I agree — join"; then streams them to the meetmood server over WebRTC
// (POST /api/meetings/{id}/participants with the SDP offer) and lets the participant leave at
// any time, which stops every track, closes the connection and tells the server. "Leave and
// delete my data" (or "Delete my data" after leaving) also has the server delete everything
// stored about them (DELETE /api/meetings/{id}/participants/{pid}, token in the body). When the
// connection drops, the page asks whether the host ended the meeting (410) and says so.
// Once connected, it says whether the analysis runs or is still starting (the server answers
// while its models load; it asks /healthz until they are loaded).
"use strict";

(() => {
  const root = document.getElementById("join");
  if (!root) return;

  const meetingId = root.dataset.meetingId || "";
  const joinToken = root.dataset.joinToken || "";

  const form = document.getElementById("consent-form");
  const nameInput = document.getElementById("display-name");
  const agreeBtn = document.getElementById("agree");
  const declineBtn = document.getElementById("decline");
  const callSection = document.getElementById("call");
  const selfView = document.getElementById("self-view");
  const mediaNote = document.getElementById("media-note");
  const leaveBtn = document.getElementById("leave");
  const withdrawBtn = document.getElementById("withdraw");
  const afterLeave = document.getElementById("after-leave");
  const deleteDataBtn = document.getElementById("delete-data");
  const statusEl = document.getElementById("status");

  const ICE_GATHER_CAP_MS = 5000;
  const MODELS_POLL_MS = 1000;
  const apiBase = `/api/meetings/${encodeURIComponent(meetingId)}/participants`;

  // Exposed for tests: {pc, participantId, state, analysis ("starting" | "running" | null)}.
  const app = { pc: null, participantId: null, state: "idle", analysis: null };
  window.meetmood = app;

  let stream = null;
  let participantToken = null;
  let leaving = false; // set once the participant asked to leave (or the page is going away)
  let leaveSent = false;

  function setStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.dataset.kind = kind || "info";
  }

  function setState(state) {
    app.state = state;
    root.dataset.state = state;
  }

  function stopTracks() {
    if (stream) {
      for (const t of stream.getTracks()) t.stop();
    }
    stream = null;
    selfView.srcObject = null;
  }

  function closePc() {
    if (app.pc) {
      try { app.pc.close(); } catch (e) { /* already closed */ }
    }
  }

  function leaveUrl() {
    return `${apiBase}/${encodeURIComponent(app.participantId)}/leave`;
  }

  function participantUrl() {
    return `${apiBase}/${encodeURIComponent(app.participantId)}`;
  }

  // Once connected, the participant can have their data deleted even after leaving.
  function offerDeletion() {
    afterLeave.hidden = !(app.participantId && participantToken);
  }

  function showForm(show) {
    form.hidden = !show;
    agreeBtn.disabled = !show;
    callSection.hidden = show;
  }

  // Tell the server we left. With beacon=true (page going away) use sendBeacon.
  async function sendLeave(beacon) {
    if (!app.participantId || !participantToken || leaveSent) return;
    leaveSent = true;
    const body = JSON.stringify({ token: participantToken });
    if (beacon) {
      let queued = false;
      try {
        queued = navigator.sendBeacon(leaveUrl(), new Blob([body], { type: "application/json" }));
      } catch (e) { queued = false; }
      if (!queued) {
        try {
          fetch(leaveUrl(), { method: "POST", headers: { "Content-Type": "application/json" },
                              body, keepalive: true }).catch(() => {});
        } catch (e) { /* nothing more we can do while unloading */ }
      }
      return;
    }
    try {
      const res = await fetch(leaveUrl(), {
        method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true,
      });
      if (res.status !== 204) console.warn("leave: unexpected HTTP status", res.status);
    } catch (e) {
      console.warn("leave: request failed", e);
    }
  }

  function leave() {
    if (app.state === "left") return;
    leaving = true;
    stopTracks(); // the camera and microphone stop at once
    setState("left");
    callSection.hidden = true;
    form.hidden = true;
    setStatus("You left. Analysis stopped.", "done");
    offerDeletion();
    // Tell the server first, then close the connection (after the answer, or 2 s at most), so
    // that the server records a deliberate leave rather than a lost connection.
    const told = sendLeave(false);
    const cap = new Promise((resolve) => setTimeout(resolve, 2000));
    Promise.race([told, cap]).then(closePc, closePc);
  }

  // Leave (if still here) and have the server delete everything stored about this participant.
  async function withdraw() {
    if (!app.participantId || !participantToken || app.state === "withdrawn") return;
    leaving = true;
    stopTracks();
    setState("withdrawing");
    callSection.hidden = true;
    form.hidden = true;
    afterLeave.hidden = true;
    deleteDataBtn.disabled = true;
    setStatus("Leaving and deleting your data…");
    let message = "";
    try {
      const res = await fetch(participantUrl(), {
        method: "DELETE",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: participantToken }),
        keepalive: true,
      });
      if (res.status !== 204) {
        const data = await res.json().catch(() => null);
        message = data && data.error && typeof data.error.message === "string"
          ? data.error.message : `HTTP ${res.status}`;
      }
    } catch (e) {
      message = "the meeting server could not be reached";
    }
    deleteDataBtn.disabled = false;
    if (message) {
      sendLeave(false).then(closePc, closePc); // at least leave
      setState("left");
      offerDeletion();
      setStatus(`You left, but your data could not be deleted (${message}). Try again, or ` +
                "ask the host to delete it.", "error");
      return;
    }
    leaveSent = true; // the server ended this participant with the deletion
    closePc();
    setState("withdrawn");
    setStatus("You left, and everything stored about you in this meeting was deleted.", "done");
  }

  // Stop everything after an error; the form comes back so the participant may try again.
  function fail(message) {
    stopTracks();
    closePc();
    if (app.participantId) sendLeave(false);
    setState("failed");
    showForm(true);
    setStatus(message, "error");
    offerDeletion();
  }

  function mediaErrorMessage(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Camera access was blocked, so you have not joined. Allow the camera for this site in " +
             "your browser settings and try again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No camera was found, so you have not joined.";
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return "The camera could not be started (is another program using it?). You have not joined.";
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return "This browser cannot share a camera on this page (it needs a secure https:// address).";
    }
    return "The camera could not be started, so you have not joined.";
  }

  // A webcam shows one face that fills the frame; a room camera shows a table of faces
  // 30 px and up, which the detector only finds at the camera's full 1280x720.
  async function getMedia(roomCamera) {
    const video = roomCamera
      ? { width: 1280, height: 720, frameRate: 30 }
      : { width: 640, height: 480, frameRate: 30 };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("getUserMedia unavailable");
    }
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ video, audio: true }), audio: true };
    } catch (err) {
      console.warn("camera+microphone failed, retrying camera only:", err && err.name);
    }
    return { stream: await navigator.mediaDevices.getUserMedia({ video, audio: false }), audio: false };
  }

  function waitForIceGathering(pc, capMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      let timer = null;
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      timer = setTimeout(done, capMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  // WEBRTC.md §5: give every video codec a Chrome-only minimum/start bitrate so that the
  // encoder holds 640x480 from the start instead of ramping up from 480x360.
  function mungeAnswer(sdp) {
    return sdp.replace(/a=rtpmap:(\d+) (VP8|H264|VP9)\/90000(\r?\n)/g,
      (m, pt, codec, eol) => m + "a=fmtp:" + pt +
        " x-google-min-bitrate=1000;x-google-start-bitrate=1000" + eol);
  }

  async function postOffer(displayName, pc) {
    let res;
    try {
      res = await fetch(apiBase, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          token: joinToken,
          display_name: displayName,
          consent: true,
          offer: { sdp: pc.localDescription.sdp, type: "offer" },
        }),
      });
    } catch (e) {
      throw new Error("Could not reach the meeting server. Check your connection and try again.");
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = data && data.error && typeof data.error.message === "string" && data.error.message
        ? data.error.message : `The server refused to connect you (HTTP ${res.status}).`;
      throw new Error(msg);
    }
    if (!data || !data.participant_id || !data.answer || typeof data.answer.sdp !== "string") {
      throw new Error("The server sent an answer this page does not understand.");
    }
    return data;
  }

  // A lost connection may mean that the host ended the meeting: its join page then answers 410.
  async function meetingHasEnded() {
    try {
      const res = await fetch(location.href, { method: "HEAD", cache: "no-store" });
      return res.status === 410;
    } catch (e) {
      return false;
    }
  }

  function stopAfterLoss(ended) {
    stopTracks();
    closePc();
    sendLeave(false);
    setState(ended ? "ended" : "failed");
    callSection.hidden = true;
    if (ended) setStatus("The host ended this meeting. Analysis stopped.", "done");
    else setStatus("Connection lost. Analysis stopped. Reload the page to join again.", "error");
    offerDeletion();
  }

  // The models may still be loading (the server has just started): the participant is
  // analysed as soon as they are, and the page says so until then.
  let analysisCheck = 0; // the latest check; an older one's answer is dropped
  let analysisTimer = null;
  async function showAnalysis(pc) {
    const check = ++analysisCheck;
    clearTimeout(analysisTimer);
    let starting = false;
    try {
      const res = await fetch("/healthz", { cache: "no-store" });
      const data = res.ok ? await res.json() : null;
      starting = !!data && data.models === "starting";
    } catch (e) {
      starting = false; // unknown: the connection's own state tells the rest
    }
    if (check !== analysisCheck || pc !== app.pc || leaving || app.state !== "connected") return;
    app.analysis = starting ? "starting" : "running";
    root.dataset.analysis = app.analysis;
    setStatus(starting ? "Connected — analysis starting (models loading)…" :
      "Connected — analysis running", "ok");
    if (starting) analysisTimer = setTimeout(() => showAnalysis(pc), MODELS_POLL_MS);
  }

  function onConnectionState(pc) {
    if (pc !== app.pc || leaving) return;
    switch (pc.connectionState) {
      case "new":
      case "connecting":
        setState("connecting");
        setStatus("Connecting…");
        break;
      case "connected":
        setState("connected");
        setStatus("Connected", "ok");
        showAnalysis(pc);
        break;
      case "disconnected":
        setState("connecting");
        setStatus("Connection lost — trying to reconnect…", "warn");
        meetingHasEnded().then((ended) => {
          if (ended && pc === app.pc && app.state === "connecting" && !leaving) stopAfterLoss(true);
        });
        break;
      case "failed":
        stopAfterLoss(false);
        meetingHasEnded().then((ended) => {
          if (ended && app.state === "failed") stopAfterLoss(true);
        });
        break;
      default:
        break; // "closed": we closed it ourselves
    }
  }

  // The server asks, on the "meetmood" data channel, for no more video than its analysis
  // takes now ({type: "send", max_fps, max_height, max_kbps}); the camera's encoder is capped
  // to that. A room camera keeps its full size (its faces are small), only its rate is capped.
  // Exposed for tests: app.sendRequest is the last request applied.
  function listenForSendRequests(pc, channel, roomCamera) {
    channel.addEventListener("message", async (ev) => {
      let req = null;
      try { req = JSON.parse(ev.data); } catch (e) { return; }
      if (!req || req.type !== "send") return;
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
      if (!sender) return;
      try {
        const params = sender.getParameters();
        if (!params.encodings || !params.encodings.length) params.encodings = [{}];
        const height = (sender.track.getSettings() || {}).height || 0;
        for (const enc of params.encodings) {
          if (req.max_fps > 0) enc.maxFramerate = req.max_fps;
          if (req.max_kbps > 0) enc.maxBitrate = req.max_kbps * 1000;
          if (!roomCamera && req.max_height > 0 && height > req.max_height) {
            enc.scaleResolutionDownBy = height / req.max_height;
          } else {
            enc.scaleResolutionDownBy = 1;
          }
        }
        await sender.setParameters(params);
        app.sendRequest = req;
      } catch (e) {
        console.warn("could not apply the server's send request:", e && e.name);
      }
    });
  }

  async function join(displayName) {
    leaving = false;
    leaveSent = false;
    app.participantId = null;
    app.pc = null;
    participantToken = null;
    afterLeave.hidden = true;
    setState("connecting");
    showForm(false);
    setStatus("Asking for your camera and microphone…");

    let media;
    try {
      media = await getMedia(document.getElementById("room-camera").checked);
    } catch (err) {
      fail(mediaErrorMessage(err));
      return;
    }
    if (leaving) { for (const t of media.stream.getTracks()) t.stop(); return; }
    stream = media.stream;
    selfView.srcObject = stream;
    mediaNote.hidden = media.audio;
    mediaNote.textContent = media.audio ? "" :
      "Microphone not available: only your camera is sent and analysed.";

    setStatus("Connecting…");
    try {
      const pc = new RTCPeerConnection({ iceServers: [] });
      app.pc = pc;
      pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      listenForSendRequests(pc, pc.createDataChannel("meetmood"),
        document.getElementById("room-camera").checked);
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc, ICE_GATHER_CAP_MS);
      if (leaving) return;

      const data = await postOffer(displayName, pc);
      app.participantId = String(data.participant_id);
      participantToken = data.participant_token;
      if (leaving) { sendLeave(false); return; }

      const answer = { type: "answer", sdp: mungeAnswer(data.answer.sdp) };
      await pc.setRemoteDescription(answer);
      if (pc.connectionState === "connected") onConnectionState(pc);
    } catch (err) {
      if (leaving) return;
      console.warn("join failed:", err);
      fail(err && err.message ? err.message : "Could not connect.");
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (app.state === "connecting" || app.state === "connected") return;
    const name = nameInput.value.trim();
    if (!name) {
      nameInput.setAttribute("aria-invalid", "true");
      setStatus("Please enter your name first.", "error");
      nameInput.focus();
      return;
    }
    nameInput.removeAttribute("aria-invalid");
    join(name.slice(0, 60));
  });

  declineBtn.addEventListener("click", () => {
    if (app.state === "connecting" || app.state === "connected") return;
    setState("declined");
    setStatus("You have not joined. Nothing was captured.", "done");
  });

  leaveBtn.addEventListener("click", leave);
  withdrawBtn.addEventListener("click", withdraw);
  deleteDataBtn.addEventListener("click", withdraw);

  window.addEventListener("pagehide", () => {
    if (["left", "idle", "declined", "withdrawing", "withdrawn", "ended"].includes(app.state)) {
      return;
    }
    leaving = true;
    stopTracks();
    sendLeave(true); // queued before the connection closes
    closePc();
    setState("left");
    callSection.hidden = true;
    form.hidden = true;
    setStatus("You left. Analysis stopped.", "done");
  });

  setState("idle");
})();
