// Baton web UI: live updates. Every page is complete without this file; it only
//  - listens to the engine's events (GET /api/v1/events/stream) and recolours graph nodes and
//    state badges of the run on screen at once,
//  - then re-fetches the page and swaps its [data-region] parts, so durations, Gantt bars and
//    buttons follow without a reload (the server stays the only renderer),
//  - tails a running attempt's log (GET .../logs/stream),
//  - asks before destructive actions (form[data-confirm]).
(() => {
  "use strict";

  const body = document.body;
  const scope = body.dataset.live;
  const indicator = document.getElementById("live-indicator");

  document.addEventListener("submit", (event) => {
    // A button's own question (one form, several decisions) wins over its form's.
    const button = event.submitter;
    const form = event.target.closest("form[data-confirm]");
    const question = (button && button.dataset.confirm) || (form && form.dataset.confirm);
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });

  const stateClass = (state) => "st-" + String(state).toLowerCase().replace(/[^a-z_]/g, "");
  const words = (state) => String(state).replace(/_/g, " ");

  function setState(element, state) {
    for (const name of [...element.classList]) if (name.startsWith("st-")) element.classList.remove(name);
    element.classList.add(stateClass(state));
  }

  function setBadge(badge, state) {
    setState(badge, state);
    const label = badge.querySelector(".label");
    if (label) label.textContent = words(state);
  }

  // ---- regions ----

  let timer = null;
  let busy = false;
  let pending = false;

  function scheduleRefresh(delay = 350) {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, delay);
  }

  async function refresh() {
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    try {
      const url = body.dataset.refreshUrl || location.pathname + location.search;
      const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-region]")) {
        // A log being tailed keeps its text; it is refreshed once its attempt ends.
        if (region.querySelector("pre[data-streaming]")) continue;
        const next = fresh.querySelector(`[data-region="${CSS.escape(region.dataset.region)}"]`);
        if (!next || next.innerHTML === region.innerHTML) continue;
        const log = region.querySelector("pre.log");
        const follow = log && atBottom(log);
        region.innerHTML = next.innerHTML;
        const newLog = region.querySelector("pre.log");
        if (newLog && follow) newLog.scrollTop = newLog.scrollHeight;
      }
      startLog();
    } catch (_) {
      // The next event or tick tries again.
    } finally {
      busy = false;
      if (pending) {
        pending = false;
        scheduleRefresh();
      }
    }
  }

  // ---- engine events ----

  function apply(event) {
    if (event.kind === "task" && event.task) {
      for (const element of document.querySelectorAll(`[data-task="${CSS.escape(event.task)}"]`)) {
        if (element.matches("g.node")) {
          setState(element, event.state);
          const detail = element.querySelector(".node-detail");
          if (detail) detail.textContent = words(event.state);
        }
        for (const badge of element.querySelectorAll("[data-live-state='task']")) setBadge(badge, event.state);
      }
    } else if (event.kind === "run") {
      for (const badge of document.querySelectorAll("[data-live-state='run']")) setBadge(badge, event.state);
    }
  }

  if (scope && "EventSource" in window) {
    const runID = body.dataset.run;
    const pipeline = body.dataset.pipeline;
    const source = new EventSource("/api/v1/events/stream");
    source.addEventListener("open", () => {
      if (!indicator) return;
      indicator.hidden = false;
      indicator.classList.add("on");
    });
    source.addEventListener("error", () => indicator && indicator.classList.remove("on"));
    const handle = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (scope === "run" && String(event.run_id) !== runID) return;
      if (scope === "pipeline" && event.pipeline !== pipeline) return;
      if (scope === "run") apply(event);
      scheduleRefresh();
    };
    source.addEventListener("run", handle);
    source.addEventListener("task", handle);
    // Durations and the Gantt chart's "now" move while a run is active.
    setInterval(() => {
      if (!document.hidden && document.querySelector("[data-active]")) scheduleRefresh(0);
    }, 5000);
  }

  // ---- log tail ----

  function atBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 48;
  }

  function startLog() {
    const log = document.querySelector("pre.log[data-stream]:not([data-streaming])");
    if (!log || !("EventSource" in window)) return;
    log.dataset.streaming = "true";
    const status = document.getElementById("log-status");
    const address = new URL(log.dataset.stream, location.href);
    let offset = Number(address.searchParams.get("offset") || 0);
    let retries = 0;
    const open = () => {
      address.searchParams.set("offset", String(offset));
      const source = new EventSource(address.toString());
      source.addEventListener("log", (message) => {
        retries = 0;
        const follow = atBottom(log);
        log.append(document.createTextNode(message.data));
        if (message.lastEventId) offset = Number(message.lastEventId);
        if (follow) log.scrollTop = log.scrollHeight;
      });
      source.addEventListener("end", (message) => {
        source.close();
        delete log.dataset.streaming;
        log.removeAttribute("data-stream");
        if (status) {
          status.textContent = "attempt ended: " + words(message.data);
          status.classList.add("ended");
        }
        scheduleRefresh(0);
      });
      // The stream resumes from the last offset received rather than from the start, so a
      // dropped connection neither repeats nor loses lines.
      source.addEventListener("error", () => {
        source.close();
        if (retries++ < 30) setTimeout(open, 1500);
      });
    };
    open();
  }

  for (const log of document.querySelectorAll("pre.log")) log.scrollTop = log.scrollHeight;
  startLog();
})();
