// babelfish browser phone. Plain JS, no build step. See docs/phone.md.
//
// The page is a Vonage leg as far as the server can tell: POST /phone/join stands in for the answer
// webhook and returns the NCCO; the page follows its websocket `connect` action (websocket:connected with
// the headers, then 20 ms L16 frames both ways), answers {"action":"clear"} with websocket:cleared, and on
// hang-up closes the socket and posts a `completed` call event to /event. A join link (`?link=` in this
// page's URL, from the operator) goes with the join; the leg secret the join returns opens /phone/events.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    language: $("language"), room: $("room"), call: $("call"), hangup: $("hangup"), status: $("status"),
    title: $("status-title"), detail: $("status-detail"), meters: $("meters"), micLevel: $("mic-level"),
    outLevel: $("out-level"), counters: $("counters"), captions: $("captions"),
  };

  // Everything a test (or a curious person in the console) may want to read.
  const bf = (window.babelfish = {
    state: "idle", leg: null, room: null, language: null, partner: null,
    framesSent: 0, framesReceived: 0, framesPlayed: 0, cleared: 0, badFrames: 0,
    captions: [], events: [],
  });

  let call = null; // the call in progress: {leg, conversation, ws, events, ctx, stream, ...}
  const languageNames = {}; // tag -> name, from /phone/languages
  const joinLink = new URLSearchParams(location.search).get("link"); // the operator's join link, if any
  // an interpreter's invitation from the operator (docs/interpreters.md): good once, it chooses the room
  const interpreterInvitation = new URLSearchParams(location.search).get("interpreter");
  let access = "open"; // the server's phone.access: "open", "link" or "off"

  // The page's words in the language chosen under "I speak" (static/phone-labels.json, every offered
  // language; English where a word is missing). Language names come from the browser (Intl.DisplayNames).
  let labels = { en: {} };
  const primaryOf = (tag) => (tag || "").toLowerCase().split(/[-_]/)[0];
  const uiLanguage = () => primaryOf(ui.language.value || navigator.language || "en");
  function t(key, vars) {
    const table = labels[uiLanguage()] || labels.en || {};
    const text = table[key] !== undefined ? table[key] : (labels.en || {})[key] !== undefined ? labels.en[key] : key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && vars[name] !== undefined ? vars[name] : m));
  }
  function nameIn(tag, display) {
    try {
      return new Intl.DisplayNames([display], { type: "language" }).of(primaryOf(tag));
    } catch (err) {
      return null;
    }
  }

  // the name of any tag the server uses ("de-DE" and "de" alike), in the page's language
  function langName(tag) {
    if (!tag) return "";
    const shown = nameIn(tag, uiLanguage());
    if (shown && shown !== primaryOf(tag)) return shown;
    const primary = tag.toLowerCase().split(/[-_]/)[0];
    if (languageNames[tag]) return languageNames[tag];
    const hit = Object.keys(languageNames).find((k) => k.toLowerCase().split(/[-_]/)[0] === primary);
    return hit ? languageNames[hit] : tag;
  }

  // -- UI state ------------------------------------------------------------------------------------------

  // state -> the labels of its title and of its default detail
  const STATES = {
    idle: ["idle", "idle_detail"],
    starting: ["starting", "starting_detail"],
    denied: ["denied", "denied_detail"],
    nomic: ["nomic", "nomic_detail"],
    insecure: ["insecure", "insecure_detail"],
    connecting: ["connecting", ""],
    waiting: ["waiting", ""],
    connected: ["connected", ""],
    "partner-left": ["partner_left", "partner_left_detail"],
    ended: ["ended", "ended_detail"],
    refused: ["refused", ""],
    error: ["error", ""],
  };

  // why /phone/join said no, for a person: by status, with the server's own words
  function refusal(status, error) {
    if (status === 403 && access === "off") return t("off");
    if (status === 403 && /link/.test(error || "")) return t("link_refused", { error });
    if (status === 403) return t("join_refused", { error: error || "not allowed" });
    if (status === 415) return t("not_json");
    if (status === 503) return t("busy", { error: error || t("all_busy") });
    if (status === 409) return t("room_full");
    if (status === 429) return t("too_many");
    return t("could_not_start", { error: error || "HTTP " + status });
  }

  function idleDetail() {
    if (joinLink || interpreterInvitation) return t("link_chooses");
    if (access === "link") return t("by_invitation");
    if (access === "off") return t("off");
    return undefined;
  }

  function setState(state, detail) {
    bf.state = state;
    const [title, defaultDetail] = STATES[state];
    ui.status.dataset.state = state;
    ui.title.textContent = t(title);
    ui.detail.textContent = detail !== undefined ? detail : defaultDetail ? t(defaultDetail) : "";
    const inCall = ["connecting", "waiting", "connected", "partner-left"].includes(state);
    ui.call.hidden = inCall;
    ui.call.disabled = state === "starting";
    ui.hangup.hidden = !inCall;
    ui.language.disabled = ui.room.disabled = inCall || state === "starting" || !!joinLink;
    ui.meters.hidden = !inCall;
  }

  function describeWaiting() {
    const code = call && call.code;
    const greeting = call && call.greeting ? call.greeting + " " : "";
    return greeting + (code ? t("room_waiting", { code }) : t("next_person"));
  }

  function onLegState(s) {
    if (!call) return;
    bf.room = s.room;
    if (!s.active) return; // the audio socket's close says why
    const partner = s.partners.find((p) => p.connected) || null;
    bf.partner = partner;
    if (partner) {
      call.hadPartner = true;
      setState("connected", t("talking", { name: langName(partner.language) || partner.name }));
    } else if (call.hadPartner) {
      setState("partner-left");
    } else if (bf.state !== "connecting" || call.socketOpen) {
      setState("waiting", describeWaiting());
    }
  }

  // -- captions ------------------------------------------------------------------------------------------

  const items = new Map(); // key -> {el, data}

  function captionItem(key, mine) {
    let item = items.get(key);
    if (!item) {
      const el = document.createElement("li");
      el.className = "caption" + (mine ? " mine" : "");
      el.innerHTML = '<div class="who"></div><div class="main"></div><div class="original"></div>';
      ui.captions.appendChild(el);
      item = { el, data: { key, mine } };
      items.set(key, item);
      bf.captions.push(item.data);
    }
    return item;
  }

  function renderCaption(item, { who, main, original, partial }) {
    const { el, data } = item;
    el.classList.toggle("partial", partial);
    el.querySelector(".who").textContent = who;
    el.querySelector(".main").textContent = main;
    el.querySelector(".original").textContent = original || "";
    Object.assign(data, { who, main, original: original || "", partial, final: !partial });
    el.scrollIntoView({ block: "nearest" });
  }

  function whoLabel(event, mine) {
    const name = langName(event.language);
    return t(mine ? "you" : "partner", { name });
  }

  const speaking = new Map(); // leg -> turns begun ("speaking") and not yet final

  function skippedLabel(reason) { // why a translation was not heard, in the page's language
    return reason === "late" ? t("skipped_late") : reason === "backlog" ? t("skipped_backlog") : t("skipped_failed");
  }

  function onCaption(event) {
    if (!call || !event.leg) return;
    const mine = event.leg === call.leg;
    const pendingKey = "pending-" + event.leg;
    if (event.type === "speaking" || event.type === "partial") {
      if (event.type === "speaking") speaking.set(event.leg, (speaking.get(event.leg) || 0) + 1);
      const item = captionItem(pendingKey, mine);
      renderCaption(item, { who: whoLabel(event, mine) + " " + t("speaking"), main: event.text || "…", partial: true });
      item.updated = Date.now();
    } else if (event.type === "final") {
      // one final per listener: show ours (the partner's words in our language, the original under them)
      if (!mine && event.listener && event.listener !== call.leg) return;
      const key = "u-" + (event.utterance || Math.random());
      let item = items.get(key);
      if (!item) {
        const pending = items.get(pendingKey);
        const open = Math.max(0, (speaking.get(event.leg) || 0) - 1);
        speaking.set(event.leg, open);
        if (pending && open === 0) { // the caption in progress becomes this final one, in place
          items.delete(pendingKey);
          items.set(key, pending);
          pending.data.key = key;
          item = pending;
        } else { // the speaker already went on: the final goes before the caption in progress
          item = captionItem(key, mine);
          if (pending) ui.captions.insertBefore(item.el, pending.el);
        }
      }
      const translated = typeof event.translation === "string" && event.translation.length > 0;
      const skipped = item.data.skipped; // a "skipped" for this utterance may have come first
      renderCaption(item, {
        who: whoLabel(event, mine) + (skipped ? " – " + skippedLabel(skipped)
          : !event.target && mine ? " – " + t("nobody_heard") : ""),
        main: translated ? event.translation : event.text,
        original: translated ? event.text : "",
        partial: false,
      });
      Object.assign(item.data, { leg: event.leg, language: event.language, target: event.target || null,
        text: event.text, translation: event.translation || null });
    } else if (event.type === "skipped") {
      // a listener did not hear it (too late, too much waiting, an engine failed): said on both sides
      if (!mine && event.listener !== call.leg) return;
      const key = "u-" + event.utterance;
      const item = items.get(key) || captionItem(key, mine);
      const data = item.data;
      renderCaption(item, {
        who: whoLabel(event, mine) + " – " + skippedLabel(event.reason),
        main: data.main || event.text,
        original: data.original || "",
        partial: false,
      });
      Object.assign(data, { leg: event.leg, language: event.language, text: event.text, skipped: event.reason });
    }
  }

  setInterval(() => { // a "speaking" that never became words (a cough, noise) fades away
    for (const [key, item] of items) {
      if (key.startsWith("pending-") && Date.now() - item.updated > 15000) {
        item.el.remove();
        items.delete(key);
        speaking.delete(key.slice("pending-".length));
        bf.captions.splice(bf.captions.indexOf(item.data), 1);
      }
    }
  }, 3000);

  // -- the call ------------------------------------------------------------------------------------------

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  async function startCall() {
    if (call) return;
    await bf.ready; // the languages and the page's words
    if (call) return;
    if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
      setState("insecure");
      return;
    }
    setState("starting");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      if (err.name === "NotAllowedError" || err.name === "SecurityError") setState("denied");
      else if (err.name === "NotFoundError" || err.name === "OverconstrainedError") setState("nomic");
      else setState("error", t("mic_failed", { error: err.message || err.name }));
      return;
    }
    const language = ui.language.value;
    const code = ui.room.value.trim();
    localStorage.setItem("babelfish.language", language);
    const c = (call = { stream, code, language, started: new Date(), hadPartner: false, socketOpen: false });
    bf.language = language;
    setState("connecting");
    try {
      c.ctx = new AudioContext({ latencyHint: "interactive" });
      await c.ctx.audioWorklet.addModule("/static/audio-worklet.js");
      const response = await fetch("/phone/join", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ language, room: code || null, ...(joinLink ? { link: joinLink } : {}),
                               ...(interpreterInvitation ? { interpreter: interpreterInvitation } : {}) }),
      });
      let joined = {};
      try { joined = await response.json(); } catch (err) { /* not JSON: the status says it */ }
      if (call !== c) return;
      if (!response.ok) {
        bf.refused = { status: response.status, error: joined.error || null };
        hangUp(false);
        setState("refused", refusal(response.status, joined.error));
        return;
      }
      if (joined.language) {
        c.language = bf.language = joined.language;
        if (languageNames[joined.language]) ui.language.value = joined.language;
      }
      if (joined.room !== undefined) c.code = joined.room || "";
      await followNcco(joined);
    } catch (err) {
      if (call !== c) return;
      console.error(err);
      const message = err.message || String(err);
      hangUp(false);
      setState("error", t("could_not_start", { error: message }));
    }
  }

  async function followNcco(joined) {
    const c = call;
    c.leg = bf.leg = joined.uuid;
    c.conversation = joined.conversation_uuid;
    c.from = joined.from;
    c.to = joined.to;
    let endpoint = null;
    for (const action of joined.ncco) {
      if (action.action === "talk") c.greeting = action.text; // Vonage would speak it; we show it
      if (action.action === "connect") {
        endpoint = (action.endpoint || []).find((e) => e.type === "websocket") || endpoint;
      }
    }
    if (!endpoint) throw new Error("the NCCO has no websocket to connect to");
    const contentType = endpoint["content-type"] || "audio/l16;rate=16000";
    const rate = Number((/rate=(\d+)/.exec(contentType) || [])[1] || 16000);
    c.frameBytes = (rate / 50) * 2;

    // state and captions of this leg's room
    c.events = new WebSocket(wsUrl("/phone/events?leg=" + encodeURIComponent(c.leg) +
      "&secret=" + encodeURIComponent(joined.secret || "")));
    c.events.onmessage = (m) => {
      const event = JSON.parse(m.data);
      bf.events.push(event);
      if (bf.events.length > 500) bf.events.shift();
      if (event.type === "state") onLegState(event);
      else onCaption(event);
    };

    // audio graph: mic -> capture worklet (-> frames); playback worklet -> speakers
    const ctx = c.ctx;
    const source = ctx.createMediaStreamSource(c.stream);
    c.capture = new AudioWorkletNode(ctx, "babelfish-capture", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { rate },
    });
    c.playback = new AudioWorkletNode(ctx, "babelfish-playback", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { rate },
    });
    source.connect(c.capture);
    c.capture.connect(ctx.destination); // silent; keeps the capture node pulled in every browser
    c.outAnalyser = ctx.createAnalyser();
    c.outAnalyser.fftSize = 512;
    c.playback.connect(c.outAnalyser);
    c.playback.connect(ctx.destination);
    await Promise.race([ctx.resume(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (call !== c) return; // hung up meanwhile
    if (ctx.state !== "running") throw new Error("the browser could not start audio (no sound output?)");

    // the websocket, exactly as Vonage opens it
    const ws = (c.ws = new WebSocket(endpoint.uri));
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      c.socketOpen = true;
      ws.send(JSON.stringify({ ...(endpoint.headers || {}), event: "websocket:connected",
        "content-type": contentType }));
      if (!c.hadPartner) setState("waiting", describeWaiting());
    };
    ws.onmessage = (m) => {
      if (typeof m.data === "string") return onCommand(m.data);
      if (m.data.byteLength !== c.frameBytes) bf.badFrames += 1; // Vonage would drop the call
      bf.framesReceived += 1;
      c.playback.port.postMessage({ type: "frame", pcm: m.data }, [m.data]);
    };
    ws.onclose = (e) => {
      if (call !== c) return;
      const why = c.hangingUp ? "" : e.code === 1000 ? t("server_ended")
        : t("connection_lost", { code: `${e.code}${e.reason ? ": " + e.reason : ""}` });
      hangUp(false);
      setState("ended", why || undefined);
    };
    c.capture.port.onmessage = (m) => {
      const frame = m.data;
      c.micPeak = Math.max(c.micPeak || 0, peak16(frame));
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(frame);
        bf.framesSent += 1;
      }
    };
    c.playback.port.onmessage = (m) => {
      const msg = m.data;
      if (msg.type === "stats") {
        bf.framesPlayed = msg.played;
        bf.playbackQueued = msg.queued;
      } else if (msg.type === "cleared") {
        bf.cleared += 1;
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: "websocket:cleared" }));
      } else if (msg.type === "mark" && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: "websocket:notify", payload: msg.payload }));
      }
    };
    c.meterTimer = setInterval(() => updateMeters(c), 100);
  }

  function onCommand(text) {
    let command;
    try { command = JSON.parse(text); } catch (err) { return; }
    if (command.action === "clear") call.playback.port.postMessage({ type: "clear" });
    else if (command.action === "notify") call.playback.port.postMessage({ type: "mark", payload: command.payload });
  }

  function peak16(buffer) {
    const s = new Int16Array(buffer);
    let m = 0;
    for (let i = 0; i < s.length; i++) m = Math.max(m, Math.abs(s[i]));
    return m / 32768;
  }

  function updateMeters(c) {
    const mic = c.micPeak || 0;
    c.micPeak = 0;
    const data = new Float32Array(c.outAnalyser.fftSize);
    c.outAnalyser.getFloatTimeDomainData(data);
    let out = 0;
    for (let i = 0; i < data.length; i++) out = Math.max(out, Math.abs(data[i]));
    const pct = (v) => Math.min(100, Math.round(Math.sqrt(v) * 100)) + "%";
    ui.micLevel.style.width = pct(mic);
    ui.outLevel.style.width = pct(out);
    ui.counters.textContent = `sent ${bf.framesSent} · received ${bf.framesReceived} · played ${bf.framesPlayed}`;
  }

  // Hang up as a phone does: the socket closes and Vonage posts a `completed` call event.
  function hangUp(byUser = true) {
    const c = call;
    if (!c) return;
    c.hangingUp = true;
    if (c.leg) {
      const ended = new Date();
      const body = JSON.stringify({
        from: c.from, to: c.to, uuid: c.leg, conversation_uuid: c.conversation, status: "completed",
        direction: "inbound", timestamp: ended.toISOString(), start_time: c.started.toISOString(),
        end_time: ended.toISOString(), duration: String(Math.round((ended - c.started) / 1000)),
      });
      if (c.ws && c.ws.readyState <= WebSocket.OPEN) c.ws.close(1000, "hang up");
      fetch("/event", { method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true })
        .then((r) => { bf.completedEvent = r.status; }, () => { bf.completedEvent = "failed"; });
    }
    teardown();
    if (byUser) setState("ended");
  }

  function teardown() {
    const c = call;
    if (!c) return;
    call = null;
    clearInterval(c.meterTimer);
    if (c.ws && c.ws.readyState <= WebSocket.OPEN) c.ws.close(1000, "hang up");
    if (c.events && c.events.readyState <= WebSocket.OPEN) c.events.close();
    if (c.stream) c.stream.getTracks().forEach((t) => t.stop());
    if (c.ctx) c.ctx.close().catch(() => {});
    bf.partner = null;
  }

  // -- setup ---------------------------------------------------------------------------------------------

  // every word of the page in its language: on load, and when the caller chooses another language
  function relabel() {
    document.documentElement.lang = uiLanguage();
    for (const el of document.querySelectorAll("[data-label]")) el.textContent = t(el.dataset.label);
    ui.room.placeholder = joinLink || interpreterInvitation ? t("from_link") : t("any_partner");
    if (bf.state === "idle") setState("idle", idleDetail());
  }

  async function loadLanguages() {
    const params = new URLSearchParams(location.search);
    let choices = [{ tag: "en-GB", name: "English" }, { tag: "de-DE", name: "German" }];
    let defaults = [];
    try {
      const [data, words] = await Promise.all([
        fetch("/phone/languages").then((r) => r.json()),
        fetch("/static/phone-labels.json").then((r) => r.json()),
      ]);
      choices = data.languages;
      defaults = data.default || [];
      access = bf.access = data.access || "open";
      labels = words;
    } catch (err) {
      console.warn("language list unavailable", err);
    }
    for (const { tag, name, offered, why } of choices) {
      languageNames[tag] = name;
      const option = document.createElement("option");
      option.value = tag;
      option.textContent = nameIn(tag, tag) || name; // each language in its own words
      if (offered === false) {
        option.disabled = true; // measured not to work well enough here: the tooltip says why
        option.title = why || "";
      }
      ui.language.appendChild(option);
    }
    const primary = (tag) => (tag || "").toLowerCase().split(/[-_]/)[0];
    const wanted = [params.get("lang"), localStorage.getItem("babelfish.language"), navigator.language,
      ...defaults];
    for (const want of wanted) {
      const usable = choices.filter((c) => c.offered !== false || joinLink);
      const hit = usable.find((c) => c.tag === want) || usable.find((c) => primary(c.tag) === primary(want));
      if (want && hit) {
        ui.language.value = hit.tag;
        break;
      }
    }
    if (params.get("room")) ui.room.value = params.get("room");
    relabel();
  }

  ui.call.addEventListener("click", startCall);
  ui.language.addEventListener("change", relabel);
  ui.hangup.addEventListener("click", () => hangUp(true));
  window.addEventListener("pagehide", () => {
    if (call && call.leg) {
      navigator.sendBeacon("/event", new Blob([JSON.stringify({
        uuid: call.leg, conversation_uuid: call.conversation, status: "completed", direction: "inbound",
        timestamp: new Date().toISOString(),
      })], { type: "application/json" }));
    }
  });
  bf.call = startCall;
  bf.hangUp = () => hangUp(true);
  setState("idle");
  bf.ready = loadLanguages();
})();
