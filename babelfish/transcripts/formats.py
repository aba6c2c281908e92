"""Transcript export formats (json, txt, srt, vtt), shared by the ``/calls`` API, the console and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

FORMATS = {"json": "application/json", "txt": "text/plain; charset=utf-8",
           "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}



def _clock(seconds: float, separator: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"



def iso_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")



def _lines(utterance: dict[str, Any]) -> list[str]:
    lines = [f"{utterance['number']} ({utterance['language']}): {utterance['source_text']}"]
    for language, text in utterance["translations"].items():
        if text and text != utterance["source_text"]:
            lines.append(f"  -> {language}: {text}")
    return lines



EVENTS = {"interpreter_joined": "an interpreter joined", "interpreter_left": "the interpreter left",
          "handed_over": "handed over to the interpreter", "taken_back": "taken back from the interpreter"}


def _event_line(event: dict[str, Any]) -> str:
    """A call event (interpreters: :data:`EVENTS`) as a line of the text transcript."""
    words = EVENTS.get(event["kind"], event["kind"])
    return f"-- {words} ({event['detail']})" if event.get("detail") else f"-- {words}"


def render(call: dict[str, Any], fmt: str) -> str:
    """One call with its utterances (``TranscriptStore.get_call``) as ``json``, ``txt``, ``srt`` or ``vtt``.
    Subtitle times are relative to the start of the call."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(call, ensure_ascii=False, indent=2)
    start = call["started_at"]
    spoken = [u for u in call["utterances"] if u["source_text"]]
    if fmt == "txt":
        when = f"{iso_time(call['started_at'])} to {iso_time(call['ended_at'])}"
        out = [f"Call {call['id']} (room code {call['room'] or 'none'}), {when}"]
        out += [f"  leg {leg['number']} ({leg['language']}, {leg['direction']})" for leg in call["legs"]]
        out.append("")
        timeline = [(u["started_at"], _lines(u)) for u in spoken]
        timeline += [(e["at"], [_event_line(e)]) for e in call.get("events", [])]
        for at, lines in sorted(timeline, key=lambda entry: entry[0]):
            out.append(f"[{_clock(at - start, '.')}] {lines[0]}")
            out += [f"{' ' * 15}{line.strip()}" for line in lines[1:]]
        return "\n".join(out) + "\n"
    out = ["WEBVTT", ""] if fmt == "vtt" else []
    separator = "." if fmt == "vtt" else ","
    for index, u in enumerate(spoken, 1):
        begin, end = u["started_at"] - start, max(u["ended_at"], u["started_at"] + 0.5) - start
        out.append(str(index))
        out.append(f"{_clock(begin, separator)} --> {_clock(end, separator)}")
        lines = [line.strip() for line in _lines(u)]
        if fmt == "vtt":
            lines[0] = f"<v {u['number']}>{lines[0]}"
        out += lines
        out.append("")
    return "\n".join(out)
