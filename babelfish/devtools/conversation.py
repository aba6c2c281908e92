"""A simulated call between people taking turns, through the fake Vonage (``babelfish call``, the demo,
benchmarks): each party dials in, speaks its recordings in turn, and hears the others translated."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babelfish.config.settings import Settings
from babelfish.core import audio, languages
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.operator import ensure_token

log = logging.getLogger(__name__)


@dataclass
class Party:
    language: str
    files: list[Path]
    label: str = ""

    @classmethod
    def parse(cls, spec: str) -> Party:
        """``de-DE:a.wav,b.wav`` -> a German caller saying a.wav, then (on their next turn) b.wav."""
        language, sep, files = spec.partition(":")
        if not sep or not language or not files:
            raise ValueError(f"--party wants LANG:FILE[,FILE...], got {spec!r}")
        paths = [Path(f) for f in files.split(",") if f]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"no such audio file: {path}")
        return cls(language=language, files=paths)


@dataclass
class TurnResult:
    party: int
    file: str
    sent_start: float
    sent_end: float
    heard_by: dict[str, float | None] = field(default_factory=dict)  # leg -> first frame heard (monotonic)


@dataclass
class CallResult:
    out: Path
    legs: list[dict[str, Any]]
    utterances: list[dict[str, Any]]
    turns: list[TurnResult]

    @property
    def ok(self) -> bool:
        return bool(self.utterances) and all(u.get("translations") for u in self.utterances)


def print_caption(event: dict[str, Any]) -> None:
    kind = event.get("type")
    tag = f"[{str(event.get('leg', ''))[:8]} {event.get('language', '')}]"
    if kind == "final":
        if event.get("translation") is None:
            print(f"{tag} {event['text']}", flush=True)
        else:
            print(f"{tag} {event['text']}\n{' ' * len(tag)} -> {event.get('target')}: {event['translation']}",
                  flush=True)
    elif kind == "partial":
        print(f"{tag} ... {event['text']}", flush=True)
    elif kind == "utterance":
        lat = event["record"]["latencies"]
        parts = "  ".join(f"{k} {v:.2f}s" for k, v in lat.items())
        print(f"{' ' * len(tag)}    timings: {parts}", flush=True)
    elif kind == "leg":
        print(f"{tag} {event.get('event')} {event.get('reason', '')}".rstrip(), flush=True)


@contextlib.asynccontextmanager
async def _server(settings: Settings, server: str | None) -> AsyncIterator[str]:
    if server:
        yield server
        return
    from babelfish.server.serving import background

    print("starting an in-process babelfish server (loading models)...", flush=True)
    async with background(settings) as url:
        yield url


async def run_call(parties: list[Party], *, settings: Settings, server: str | None = None, out: Path,
                   pace: float = 1.0, gap_s: float = 1.0,
                   printer: Callable[[dict[str, Any]], None] | None = print_caption) -> CallResult:
    """Dial every party, let them speak their files round-robin, hang up, and write ``out``."""
    callers = [f"4915{i:09d}" for i in range(1, len(parties) + 1)]
    if server is None:  # our own server: tell it which language each caller speaks
        settings = settings.model_copy(update={"numbers": {**settings.numbers,
                                                           **dict(zip(callers, (p.language for p in parties),
                                                                      strict=True))}})
    out.mkdir(parents=True, exist_ok=True)
    token: str | None
    if server is None:  # our own server: its captions are read with a token of its own
        settings, token = ensure_token(settings)
    else:
        token = settings.security.operator_token.get_secret_value() if settings.security.operator_token else None
    async with _server(settings, server) as url:
        feed = CaptionFeed(url, printer, token=token)
        await feed.start()
        async with FakeVonage(url) as vonage:
            calls: list[FakeCall] = []
            for party, caller in zip(parties, callers, strict=True):
                call = await vonage.dial(caller, pace=pace, language=party.language)
                lang = call.headers.get("lang", party.language)
                if languages.primary(lang) != languages.primary(party.language):
                    log.warning("server gave %s language %s, not %s", caller, lang, party.language)
                calls.append(call)
            # those who waited hear "someone has joined" as the others connect: let it play out first
            await asyncio.gather(*(call.wait_heard(after=0, quiet_s=0.5, timeout=15) for call in calls[:-1]))
            turns = await _take_turns(parties, calls, gap_s)
            expected = len(turns)
            await feed.wait_utterances(expected, timeout=30)
            for call in calls:
                await call.hang_up()
        await feed.stop()
    utterances = feed.utterances()
    legs = []
    for party, call in zip(parties, calls, strict=True):
        heard = out / f"{call.leg}-heard.wav"
        audio.write_wav(heard, call.heard(), call.rate)
        legs.append({"leg": call.leg, "caller": call.caller, "language": call.headers.get("lang", party.language),
                     "files": [str(f) for f in party.files], "heard": str(heard),
                     "frames_heard": call.received_frames, "bad_frames": call.bad_frames})
    (out / "transcript.json").write_text(json.dumps(utterances, indent=2, ensure_ascii=False))
    (out / "call.json").write_text(json.dumps({"server": url, "legs": legs}, indent=2, ensure_ascii=False))
    return CallResult(out=out, legs=legs, utterances=utterances, turns=turns)


async def _take_turns(parties: list[Party], calls: list[FakeCall], gap_s: float) -> list[TurnResult]:
    results: list[TurnResult] = []
    longest = max(len(p.files) for p in parties)
    for round_ in range(longest):
        for i, (party, call) in enumerate(zip(parties, calls, strict=True)):
            if round_ >= len(party.files):
                continue
            samples, rate = audio.read_wav(party.files[round_])
            turn = await call.say(samples, rate)
            result = TurnResult(party=i, file=str(party.files[round_]), sent_start=turn.started,
                                sent_end=turn.ended)
            for other in calls:
                if other is not call:
                    await other.wait_heard(after=turn.started, quiet_s=gap_s, timeout=30)
                    result.heard_by[other.leg] = other.first_heard_after(turn.started)
            results.append(result)
    return results

