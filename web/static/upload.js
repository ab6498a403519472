// The home page's recording upload: send the file with upload progress, then follow the
// analysis (progress, speed, time left) until the meeting's links can be shown.
// Server text only ever goes into textContent or href, never innerHTML.
(() => {
  "use strict";
  const form = document.getElementById("recording-form");
  if (!form) return;
  const status = document.getElementById("recording-status");
  const stage = document.getElementById("recording-stage");
  const bar = document.getElementById("recording-progress");
  const detail = document.getElementById("recording-detail");
  const links = document.getElementById("recording-links");
  const maxBytes = Number(form.dataset.maxBytes);

  const secs = (s) => (s == null ? "?" : `${Math.round(s)} s`);

  function show(text, value, note) {
    status.hidden = false;
    stage.textContent = text;
    if (value == null) bar.removeAttribute("value");
    else bar.value = value;
    detail.textContent = note || "";
  }

  function fail(message) {
    show("Analysis failed", 0, message);
    form.querySelector("button").disabled = false;
  }

  async function follow(url) {
    for (;;) {
      let job;
      try {
        const resp = await fetch(url, { cache: "no-store" });
        job = await resp.json();
        if (!resp.ok) return fail(job.error ? job.error.message : `error ${resp.status}`);
      } catch (e) {
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      if (job.state === "queued") show("Waiting for the analysis to start…", null);
      if (job.state === "analysing") {
        const part = job.duration_secs ? job.done_secs / job.duration_secs : null;
        const speed = job.speed ? `, ${job.speed.toFixed(2)}× real time` : "";
        show(
          "Analysing…",
          part,
          `${secs(job.done_secs)} of ${secs(job.duration_secs)}${speed}, about ` +
            `${secs(job.eta_secs)} left`
        );
      }
      if (job.state === "failed") return fail(job.error || "the analysis failed");
      if (job.state === "done") {
        show(
          "Done",
          1,
          `${job.participants} participant(s); analysed at ${job.speed}× real time. ` +
            "The uploaded file has been deleted. Keep these links private."
        );
        document.getElementById("recording-host").href = job.host_url;
        document.getElementById("recording-report").href = job.report_url;
        links.hidden = false;
        form.querySelector("button").disabled = false;
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    if (maxBytes && file.size > maxBytes) {
      return fail(`The file is larger than the ${form.dataset.maxBytes / 1048576} MB allowed.`);
    }
    links.hidden = true;
    form.querySelector("button").disabled = true;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    // Checked before the server reads the file, so a refused upload costs no upload time.
    xhr.setRequestHeader("X-CSRF-Token", form.elements.csrf_token.value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) show("Uploading…", e.loaded / e.total, `${Math.round((100 * e.loaded) / e.total)} %`);
    };
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status !== 202) return fail(body.error ? body.error.message : `error ${xhr.status}`);
      follow(body.status_url);
    };
    xhr.onerror = () => fail("the upload did not reach the server");
    show("Uploading…", 0);
    xhr.send(new FormData(form));
  });
})();
