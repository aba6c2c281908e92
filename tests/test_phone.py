"""The browser phone, end to end: two headless Chromium pages talk through the real server and engines.

Each Chromium has a fake microphone that plays a speech file (real recorded English; German synthesized
with espeak-ng), the page captures it with its AudioWorklet and speaks Vonage's websocket protocol. The
browsers are driven with the Chrome DevTools Protocol over a websocket (the ``websockets`` package the
project already uses), so no browser-automation package or browser download is needed.

``BABELFISH_SCREENSHOTS=DIR`` keeps the two pages' screenshots in DIR (the README's come from here).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import sacrebleu

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.pipeline.protocols import Engines
from babelfish.server.phone import STATIC
from babelfish.server.serving import background

from .cdp import browsers
from .conftest import OPERATOR, asterisk, double_engines

LABELS = json.loads((STATIC / "phone-labels.json").read_text(encoding="utf-8"))  # the page's words, per language

GERMAN = "Guten Tag. Ich möchte bitte an der Konferenz teilnehmen."
CALL_TIMEOUT_S = 180


def microphone_file(samples: np.ndarray, rate: int, path: Path) -> Path:
    """Speech for Chromium's fake microphone, which loops the file: a little silence before the speech
    and enough after it that each repeat is a new turn, heard through before the next one starts."""
    samples, rate = audio.resample(samples, rate, 48000), 48000
    silence = np.zeros(int(0.5 * rate), dtype=np.float32)
    audio.write_wav(path, np.concatenate([silence, samples, silence.repeat(12)]), rate)
    return path


def normalize(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


PARTNER_CAPTION = ("window.babelfish.captions.filter(c => !c.mine && c.final && c.translation"
                   " && c.original)")
OWN_CAPTION = "window.babelfish.captions.filter(c => c.mine && c.final)"


@pytest.fixture
def microphones(tmp_path: Path) -> tuple[Path, Path]:
    """German (synthesized with espeak-ng: no recording of German ships in any package here) and English
    (a real recorded telephone prompt), each as a fake microphone file."""
    de_raw = tmp_path / "de-espeak.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(de_raw), GERMAN], check=True)
    english, rate = audio.read_wav(asterisk("conf-getconfno"))
    return (microphone_file(*audio.read_wav(de_raw), tmp_path / "de.wav"),
            microphone_file(english, rate, tmp_path / "en.wav"))


@pytest.mark.e2e
async def test_two_browser_phones_talk_through_the_server(engines: Engines, models_dir: Path,
                                                          microphones: tuple[Path, Path], tmp_path: Path) -> None:
    started = time.monotonic()
    de_mic, en_mic = microphones
    settings = Settings(models_dir=models_dir, segmenter={"partial_every_ms": 1000})
    async with background(settings, engines) as url, browsers(tmp_path, [de_mic, en_mic]) as (de_browser,
                                                                                               en_browser):
        de = await de_browser.page(f"{url}/phone?lang=de-DE&room=e2e")
        await de.evaluate("document.getElementById('call').click()")
        await de.wait_for("window.babelfish.state === 'waiting'", 30)
        en = await en_browser.page(f"{url}/phone?lang=en-GB&room=e2e")
        await en.evaluate("document.getElementById('call').click()")
        for page in (de, en):
            await page.wait_for("window.babelfish.state === 'connected'", 30)
        async with httpx.AsyncClient() as http:
            rooms = (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["rooms"]
        assert [(room["code"], sorted(leg["language"] for leg in room["legs"])) for room in rooms] == [
            ("e2e", ["de-DE", "en-GB"])]

        # each side reads the other side's words translated (the original under them) and hears them
        for page in (de, en):
            await page.wait_for(f"{PARTNER_CAPTION}.length > 0 && window.babelfish.framesPlayed > 0",
                                CALL_TIMEOUT_S - (time.monotonic() - started))
        for page in (de, en):  # and its own side's captions: the caller's words and what the partner heard
            await page.wait_for(f"{OWN_CAPTION}.length > 0", 60)
        heard_by = {"de": await de.evaluate(PARTNER_CAPTION), "en": await en.evaluate(PARTNER_CAPTION)}
        stats = {name: await page.evaluate("JSON.stringify(window.babelfish)") for name, page in
                 (("de", de), ("en", en))}
        print(json.dumps(heard_by, indent=1, ensure_ascii=False))

        # the engines are small models and the German is synthesized: words any fair result contains
        english_heard_by_de = heard_by["de"][0]
        assert english_heard_by_de["language"] == "en-GB" and english_heard_by_de["target"] == "de-DE"
        assert "conference" in normalize(english_heard_by_de["original"])
        assert english_heard_by_de["main"] == english_heard_by_de["translation"]
        assert normalize(english_heard_by_de["main"]) != normalize(english_heard_by_de["original"])
        assert any(word in normalize(english_heard_by_de["main"]) for word in ("konferenz", "bitte", "nummer"))
        german_heard_by_en = heard_by["en"][0]
        assert german_heard_by_en["language"] == "de-DE" and german_heard_by_en["target"] == "en-GB"
        assert sacrebleu.sentence_chrf(german_heard_by_en["original"], [GERMAN]).score > 35
        assert normalize(german_heard_by_en["main"]) != normalize(german_heard_by_en["original"])
        assert set(normalize(german_heard_by_en["main"]).split()) & {
            "conference", "good", "day", "hello", "like", "would", "attend", "participate", "join", "take"}
        for name, raw in stats.items():
            state = json.loads(raw)
            assert {"speaking", "final"} <= {event["type"] for event in state["events"]}, name
            assert state["framesSent"] > 100, name  # the microphone went out as 20 ms frames
            assert state["framesReceived"] >= state["framesPlayed"] > 0 and state["badFrames"] == 0, name

        shots = Path(os.environ.get("BABELFISH_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        await de.screenshot(shots / "phone-de.png")
        await en.screenshot(shots / "phone-en.png")

        # the English caller hangs up: socket closed, `completed` posted; the German side is told
        await en.evaluate("document.getElementById('hangup').click()")
        assert await en.evaluate("window.babelfish.state") == "ended"
        assert await en.wait_for("window.babelfish.completedEvent", 10) == 200  # the `completed` call event
        await de.wait_for("window.babelfish.state === 'partner-left'", 30)
        await de.evaluate("document.getElementById('hangup').click()")
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 30
            while (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json() == {"rooms": [], "legs": 0}


@pytest.fixture
def silent_microphone(tmp_path: Path) -> Path:
    path = tmp_path / "silence.wav"
    audio.write_wav(path, np.zeros(48000 * 2, dtype=np.float32), 48000)
    return path


@pytest.mark.e2e
async def test_page_states_with_a_phone_partner(server: tuple[str, Engines], speech: tuple[np.ndarray, int],
                                                silent_microphone: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Microphone denied, then allowed; waiting; a phone caller (the fake Vonage) joins the browser's room,
    speaks, and the page captions and plays it; the caller hangs up; the page hangs up. Test-double engines:
    the browser and the server's states are under test here, not the models."""
    from babelfish.devtools.fake_vonage import FakeVonage

    url, _ = server
    from babelfish.engines import support

    rated = {"languages": {"fr": {"recognition_wer": 10.0, "voice_wer": 20.0, "to_english_chrf": 50.0,
                                  "from_english_chrf": 45.0}}}
    monkeypatch.setattr(support, "measured", lambda: rated)  # French offered, whatever this machine measured
    async with browsers(tmp_path, [silent_microphone], False) as (browser,), FakeVonage(url) as vonage:
        page = await browser.page(f"{url}/phone?lang=fr-FR")
        await browser.send("Browser.setPermission", {"permission": {"name": "microphone"}, "setting": "denied"})
        await page.evaluate("document.getElementById('call').click()")
        await page.wait_for("window.babelfish.state === 'denied'", 20)
        # the page speaks the caller's language (phone-labels.json), and names languages in it
        assert LABELS["fr"]["denied"] in await page.evaluate("document.getElementById('status').textContent"), \
            browser.console
        assert await page.evaluate("document.getElementById('call').textContent") == LABELS["fr"]["call"]
        await browser.send("Browser.setPermission", {"permission": {"name": "microphone"}, "setting": "granted"})
        await page.evaluate("document.getElementById('call').click()")
        await page.wait_for("window.babelfish.state === 'waiting'", 20)

        phone = await vonage.dial("447700900123")  # unmapped: gets the first default language not in the room
        await page.wait_for("window.babelfish.state === 'connected'", 20)
        assert phone.headers["lang"] == "de-DE" and phone.headers["room"] == await page.evaluate(
            "window.babelfish.room")
        await phone.say(*speech)
        caption = (await page.wait_for(f"{PARTNER_CAPTION}.length && {PARTNER_CAPTION}", 30))[0]
        assert caption["main"].startswith("[fr-FR] speech of") and caption["original"].startswith("speech of")
        german = await page.evaluate("new Intl.DisplayNames(['fr'], {type: 'language'}).of('de')")
        assert caption["who"] == LABELS["fr"]["partner"].format(name=german) == "Correspondant (allemand)"
        await page.wait_for("window.babelfish.framesPlayed > 10", 20)
        assert await page.evaluate("window.babelfish.badFrames") == 0
        assert phone.bad_frames == 0 and phone.closed is None  # the browser leg's frames are Vonage's size

        await phone.hang_up()
        await page.wait_for("window.babelfish.state === 'partner-left'", 20)
        await page.evaluate("document.getElementById('hangup').click()")
        assert await page.evaluate("window.babelfish.state") == "ended"
        assert await page.wait_for("window.babelfish.completedEvent", 10) == 200
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 20
            while (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json() == {"rooms": [], "legs": 0}


WORKLETS = """(async () => {
  // one second of a 440 Hz tone at 48 kHz through the capture worklet, and 25 wire frames of a tone through
  // the playback worklet, then a clear: rendered offline, so no sound card is needed
  const ctx = new OfflineAudioContext(1, 48000, 48000);
  await ctx.audioWorklet.addModule("/static/audio-worklet.js");
  const options = {numberOfOutputs: 1, outputChannelCount: [1], processorOptions: {rate: 16000}};
  const capture = new AudioWorkletNode(ctx, "babelfish-capture", {numberOfInputs: 1, ...options});
  const frames = [];
  capture.port.onmessage = (m) => frames.push(new Int16Array(m.data));
  const tone = ctx.createOscillator();
  tone.frequency.value = 440;
  tone.connect(capture);
  capture.connect(ctx.destination);
  tone.start();
  const playback = new AudioWorkletNode(ctx, "babelfish-playback", {numberOfInputs: 0, ...options});
  const messages = [];
  playback.port.onmessage = (m) => messages.push(m.data);
  for (let f = 0; f < 25; f++) {
    const pcm = new Int16Array(320);
    for (let i = 0; i < 320; i++) pcm[i] = Math.round(10000 * Math.sin(2 * Math.PI * 440 * (f * 320 + i) / 16000));
    playback.port.postMessage({type: "frame", pcm: pcm.buffer}, [pcm.buffer]);
  }
  playback.port.postMessage({type: "mark", payload: {n: 1}});
  playback.connect(ctx.destination);
  await new Promise((r) => setTimeout(r, 200));
  const rendered = (await ctx.startRendering()).getChannelData(0);
  await new Promise((r) => setTimeout(r, 300));
  const rms = (xs) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0) / xs.length);
  const captured = [];
  for (const frame of frames.slice(2)) for (const v of frame) captured.push(v / 32768);
  return {frames: frames.length, sizes: [...new Set(frames.map((f) => f.length))], captureRms: rms(captured),
          playedRms: rms(Array.from(rendered.subarray(0, 24000))), restRms: rms(Array.from(rendered.subarray(26000))),
          stats: messages.filter((m) => m.type === "stats").pop(), marks: messages.filter((m) => m.type === "mark")};
})()"""


@pytest.mark.e2e
async def test_worklets_frame_and_resample_audio(server: tuple[str, Engines], silent_microphone: Path,
                                                 tmp_path: Path) -> None:
    url, _ = server
    async with browsers(tmp_path, [silent_microphone]) as (browser,):
        page = await browser.page(f"{url}/phone")
        result = await page.evaluate(WORKLETS)
    # capture: 48 kHz -> exact 20 ms frames of 16 kHz PCM (320 samples), the tone's level kept (sine: 0.707)
    assert result["sizes"] == [320] and 48 <= result["frames"] <= 50
    assert abs(result["captureRms"] - 0.707) < 0.01
    # playback: 25 frames (0.5 s) of a tone at 16 kHz played at 48 kHz, then silence; the mark after them fires
    assert result["stats"]["played"] == result["stats"]["received"] == 25
    assert abs(result["playedRms"] - 10000 / 32768 * 0.707) < 0.01 and result["restRms"] < 0.001
    assert result["marks"] == [{"type": "mark", "payload": {"n": 1}}]


async def test_join_returns_the_answer_webhooks_ncco_and_room_codes_keep_strangers_out(settings: Settings) -> None:
    """No browser: the endpoints the page uses."""
    settings.rooms.conference_size = 3
    async with background(settings, double_engines()) as url, httpx.AsyncClient(base_url=url) as http:
        assert "<title>babelfish phone</title>" in (await http.get("/phone")).text
        assert (await http.get("/static/audio-worklet.js")).status_code == 200
        assert {"tag": "de-DE", "name": "German", "offered": True} in (await http.get("/phone/languages")).json()[
            "languages"]
        for body in ({"language": "xx"}, {"language": 3}, {"language": "de", "room": "no spaces"}, [1]):
            assert (await http.post("/phone/join", json=body)).status_code == 400
        assert (await http.post("/phone/join", content=b"{", headers={"Content-Type": "application/json"})
                ).status_code == 400

        # a phone caller waits; a browser without a code is paired with them, as a second caller would be
        answer = (await http.get("/answer", params={"from": "447700900001", "to": "447700900000", "uuid": "phone-1",
                                                    "conversation_uuid": "CON-1"})).json()
        joined = (await http.post("/phone/join", json={"language": "fr"})).json()
        ncco = joined["ncco"]
        assert [a["action"] for a in ncco] == [a["action"] for a in answer] == ["talk", "connect"]
        assert ncco[0]["language"] == "fr-FR"
        endpoint = ncco[1]["endpoint"][0]
        assert endpoint["type"] == "websocket" and endpoint["content-type"] == "audio/l16;rate=16000"
        assert endpoint["uri"].startswith(url.replace("http", "ws") + "/socket?leg=")
        assert endpoint["headers"] == {"leg": joined["uuid"], "lang": "fr-FR",
                                       "room": answer[1]["endpoint"][0]["headers"]["room"]}

        # browsers with a code share a private room up to the conference size (3 here): a fourth is refused,
        # and phone callers go elsewhere
        first = (await http.post("/phone/join", json={"language": "de-DE", "room": "tea"})).json()
        phone = (await http.get("/answer", params={"from": "447700900002", "to": "447700900000", "uuid": "phone-2",
                                                   "conversation_uuid": "CON-2"})).json()
        second = (await http.post("/phone/join", json={"language": "en-GB", "room": "tea"})).json()
        third = (await http.post("/phone/join", json={"language": "it", "room": "tea"})).json()
        assert (await http.post("/phone/join", json={"language": "es", "room": "tea"})).status_code == 409
        listed = (await http.get("/rooms", headers=OPERATOR)).json()["rooms"]
        rooms = {room["code"]: [leg["id"] for leg in room["legs"]] for room in listed}
        assert rooms["tea"] == [first["uuid"], second["uuid"], third["uuid"]]
        by_leg = rooms_by_leg(await http.get("/rooms", headers=OPERATOR))
        assert phone[1]["endpoint"][0]["headers"]["room"] == by_leg["phone-2"]
        assert not rooms_by_leg(await http.get("/rooms", headers=OPERATOR))["phone-2"].startswith("code-tea")


def rooms_by_leg(response: httpx.Response) -> dict[str, str]:
    return {leg["id"]: room["id"] for room in response.json()["rooms"] for leg in room["legs"]}
