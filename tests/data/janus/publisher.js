// Publishes into a Janus VideoRoom with janus.js; window.state says how far it got.
window.state = "starting";
const params = new URLSearchParams(location.search);
const room = Number(params.get("room"));
Janus.init({
  debug: false,
  dependencies: Janus.useDefaultDependencies(),
  callback: () => {
    const janus = new Janus({
      server: params.get("server"),
      iceServers: [],
      error: (e) => { window.state = "error: " + e; },
      success: () => {
        let handle = null;
        janus.attach({
          plugin: "janus.plugin.videoroom",
          error: (e) => { window.state = "error: " + e; },
          success: (h) => {
            handle = h;
            h.send({ message: { request: "join", ptype: "publisher", room, display: params.get("display") } });
          },
          webrtcState: (on) => { if (on) window.state = "publishing"; },
          onmessage: (msg, jsep) => {
            if (msg.videoroom === "joined") {
              handle.createOffer({
                tracks: [
                  { type: "audio", capture: true, recv: false },
                  { type: "video", capture: { width: 640, height: 480 }, recv: false, simulcast: true },
                ],
                success: (offer) => handle.send({ message: { request: "configure", audio: true, video: true }, jsep: offer }),
                error: (e) => { window.state = "error: " + e; },
              });
            }
            if (msg.error) window.state = "error: " + msg.error;
            if (jsep) handle.handleRemoteJsep({ jsep });
          },
        });
      },
    });
  },
});
