"""``make demo``: a simulated two-party call, German and English as in the original, through the real
server, the fake Vonage and the embedded offline engines, at real-time pace.

The English caller is real recorded telephone speech (Asterisk's prompts, 8 kHz). No recording of German
conversational speech ships in any package here, so the German caller is synthesized (Kokoro, in a voice of
its own: the jm_kumo style), and the demo says so. It also says which voice each side hears.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.devtools.conversation import Party, run_call
from babelfish.engines.voices import Voices

ASTERISK = Path("/usr/share/asterisk/sounds/en")

# (German line, synthesized) and (English recording, its transcript), alternating as a call would.
GERMAN = [
    "Guten Tag. Ich möchte bitte an der Konferenz teilnehmen.",
    "Die Nummer ist eins, zwei, drei, vier.",
    "Schade. Dann versuche ich es später noch einmal. Auf Wiederhören.",
]
ENGLISH = ["conf-getconfno", "conf-invalid", "please-try-call-later"]


CALLER_STYLE = "jm_kumo"  # the German caller's own voice, not the one the English caller hears


def prepare(out: Path, settings: Settings) -> tuple[Party, Party]:
    missing = [name for name in ENGLISH if not (ASTERISK / f"{name}.wav").exists()]
    if missing:
        sys.exit(f"recorded prompts missing ({', '.join(missing)}): run `make demo` (it installs them)")
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    caller = Voices({"de": f"kokoro:{CALLER_STYLE}"}, settings.models_dir).get("de")
    german_files = []
    for i, line in enumerate(GERMAN, 1):
        path = inputs / f"de-{i}.wav"
        samples, rate = caller.synthesize_sync(line)  # type: ignore[attr-defined]
        audio.write_wav(path, audio.resample(samples, rate, 16000), 16000)
        german_files.append(path)
    english_files = [ASTERISK / f"{name}.wav" for name in ENGLISH]
    return Party("de-DE", german_files), Party("en-GB", english_files)


def heard_voices(settings: Settings) -> dict[str, str]:
    """The voice each listener hears (``kokoro:<style>``, ``piper:joe``, ...), as the server will choose it."""
    if settings.synthesizer.engine != "local":
        return {tag: settings.synthesizer.engine for tag in ("de-DE", "en-GB")}
    voices = Voices(settings.synthesizer.voices, settings.models_dir)
    return {tag: voices.spec(tag) for tag in ("de-DE", "en-GB")}


def main() -> int:
    out = Path("demo-out")
    settings = load_settings()
    german, english = prepare(out, settings)
    voices = heard_voices(settings)
    print("babelfish demo: a simulated phone call through the real server and the fake Vonage")
    print(f"  caller 1 speaks German  (SYNTHESIZED with Kokoro {CALLER_STYLE}: no recording of German sentences "
          "ships here)")
    print("  caller 2 speaks English (REAL recorded 8 kHz telephone speech, Asterisk core sounds)")
    print(f"  the German caller hears the English side in the voice {voices['de-DE']}; the English caller hears "
          f"the German side in the voice {voices['en-GB']}")
    print(f"  engines: Silero VAD, Whisper {settings.recognizer.model}, {settings.translator.model}, all offline\n")
    result = asyncio.run(run_call([german, english], settings=settings, out=out, pace=1.0, gap_s=1.0))
    print("\nutterance  speaker  end of speech -> first translated frame  (recognize / translate / synthesize)")
    firsts = []
    for record in result.utterances:
        lat = record["latencies"]
        first = lat.get("first_frame")
        if first is not None:
            firsts.append(first)
        stages = " / ".join(f"{lat.get(k, 0):.2f}" for k in ("recognize", "translate", "synthesize"))
        print(f"  {record['id'][:8]}  {record['language']:6}  {first if first is not None else float('nan'):6.2f} s"
              f"   ({stages})")
    if firsts:
        print(f"median {statistics.median(firsts):.2f} s over {len(firsts)} utterances")
    print(f"\nwrote {out / 'transcript.json'}")
    for leg in result.legs:
        print(f"wrote {leg['heard']}  (what the {leg['language']} caller heard)")
    calls = sorted({record["room"] for record in result.utterances})
    if calls:
        print(f"stored in {settings.database_url}: .venv/bin/babelfish transcripts show {calls[0]}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
