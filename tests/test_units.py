"""Unit tests of the small pieces: PCM framing, the wire protocol, rooms, settings, the segmenter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from babelfish.config.pipeline import SegmenterSettings
from babelfish.config.settings import load_settings
from babelfish.core import audio, languages
from babelfish.core.rooms import Switchboard
from babelfish.pipeline.segment import Pause, Segmenter, SileroDetector, Speech, SpeechStarted
from babelfish.pipeline.synthesize import sentences
from babelfish.telephony import vonage, wire

from .conftest import asterisk


def test_frame_sizes_match_vonage() -> None:
    assert [audio.frame_bytes(r) for r in (8000, 16000, 24000)] == [320, 640, 960]


def test_frames_pad_the_last_frame_with_silence() -> None:
    pcm = b"\x01\x00" * 500  # 1000 bytes at 16 kHz = 1.56 frames
    out = audio.frames(pcm, 16000)
    assert [len(f) for f in out] == [640, 640]
    assert out[1][360:] == b"\x00" * 280
    assert audio.frames(pcm, 16000, pad=False) == [pcm[:640]]


def test_reframer_never_splits_a_sample_and_loses_no_byte() -> None:
    r = audio.Reframer(8000)
    data = bytes(range(256)) * 10
    out: list[bytes] = []
    for i in range(0, len(data), 7):
        out.extend(r.push(data[i : i + 7]))
    assert all(len(f) == 320 for f in out)
    assert b"".join(out) + data[len(out) * 320 :] == data
    assert r.pending == len(data) - len(out) * 320


def test_pcm_round_trip_and_resampling_keep_a_tone() -> None:
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    back = audio.pcm_to_float(audio.float_to_pcm(tone))
    assert np.max(np.abs(back - tone)) < 1e-4
    up = audio.resample(tone, 8000, 16000)
    assert up.size == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / up.size - 440) < 2


def test_wire_events() -> None:
    event = wire.parse_event(json.dumps({"event": "websocket:dtmf", "digit": "5", "duration": 260}))
    assert event.digit == "5"
    nested = wire.parse_event(json.dumps({"event": "websocket:dtmf", "dtmf": {"digit": "#"}}))
    assert nested.digit == "#"
    connected = wire.parse_event(wire.connected_message("audio/l16;rate=8000", {"leg": "x"}))
    assert connected.name == wire.CONNECTED and connected.fields["leg"] == "x"
    assert wire.content_rate(connected.fields["content-type"], 16000) == 8000
    for bad in ("nope", "[]", json.dumps({"event": 3})):
        with pytest.raises(wire.ProtocolError):
            wire.parse_event(bad)
    with pytest.raises(wire.ProtocolError):
        wire.content_rate("audio/l16;rate=44100", 16000)


def test_answer_request_validation() -> None:
    ok = vonage.parse(vonage.AnswerRequest, {"from": "+4915100000001", "to": "447700900000", "uuid": "u-1",
                                             "conversation_uuid": "CON-1", "extra": "ignored"})
    assert ok.from_ == "4915100000001"
    with pytest.raises(vonage.WebhookError, match="conversation_uuid"):
        vonage.parse(vonage.AnswerRequest, {"from": "1", "to": "2", "uuid": "u"})
    assert vonage.websocket_uri("https://example.org/", "abc") == "wss://example.org/socket?leg=abc"


def test_pairing_and_languages() -> None:
    board = Switchboard({"+447700900001": "en-US"}, ["de-DE", "en-GB"])
    a = board.answer("a", "4915100000001")
    b = board.answer("b", "4915100000002")
    c = board.answer("c", "447700900001")
    assert a.room is b.room and c.room is not a.room
    assert (a.language, b.language, c.language) == ("de-DE", "en-GB", "en-US")
    assert board.answer("a", "4915100000001") is a  # Vonage retried the webhook
    board.hang_up("b")
    board.requeue(a)  # c is waiting already: a joins c at once
    assert a.room is c.room and len(board.rooms) == 1


def test_prompts_speak_the_callers_language() -> None:
    assert languages.prompt("wait", "de-DE") == ("Bitte warten Sie, während wir Sie verbinden.", "de-DE")
    text, tag = languages.prompt("wait", "xx-YY")
    assert tag == "en-GB" and text.startswith("Please wait")
    assert languages.regional("de") == "de-DE" and languages.primary("en_GB") == "en"


def test_settings_from_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "babelfish.toml"
    config.write_text('sample_rate = 8000\n[numbers]\n"447700900001" = "fr-FR"\n[segmenter]\nend_of_turn_ms = 400\n')
    monkeypatch.setenv("BABELFISH_PORT", "9000")
    monkeypatch.setenv("BABELFISH_SEGMENTER__MAX_UTTERANCE_S", "8")
    s = load_settings(config)
    assert (s.port, s.sample_rate, s.numbers) == (9000, 8000, {"447700900001": "fr-FR"})
    assert (s.segmenter.end_of_turn_ms, s.segmenter.max_utterance_s) == (400, 8.0)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_sentences() -> None:
    assert sentences("Hallo. Wie geht's? Gut!  ") == ["Hallo.", "Wie geht's?", "Gut!"]
    assert sentences("") == []


def _run_segmenter(samples: np.ndarray, rate: int, **settings: float) -> list:
    seg = Segmenter(SileroDetector(rate), rate, SegmenterSettings(**settings))
    events = []
    step = audio.frame_bytes(rate) // 2
    for i in range(0, samples.size, step):
        events.extend(seg.push(samples[i : i + step], (i + step) / rate))
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
def test_segmenter_finds_each_utterance_in_real_speech(rate: int) -> None:
    names = ["agent-alreadyon", "auth-incorrect", "conf-getconfno"]
    clips = [audio.read_wav(asterisk(n), rate)[0] for n in names]
    gap = np.zeros(int(1.5 * rate), dtype=np.float32)
    stream = np.concatenate([gap] + [x for c in clips for x in (c, gap)])
    events = _run_segmenter(stream, rate)
    speeches = [e for e in events if isinstance(e, Speech)]
    assert len(speeches) == 3 and sum(isinstance(e, SpeechStarted) for e in events) == 3
    for speech, clip in zip(speeches, clips, strict=True):
        assert abs(speech.duration - clip.size / rate) < 1.0
        # the end of turn is decided about end_of_turn_ms after the last voiced window
        assert 0.45 <= speech.detected_at - speech.ended_at <= 0.6
    # each end of turn was preceded by a pause whose audio is exactly the utterance: work started on it
    # early (speculation) can be kept
    for speech in speeches:
        pause = [e for e in events if isinstance(e, Pause) and e.ended_at == speech.ended_at]
        assert len(pause) == 1 and np.array_equal(pause[0].audio, speech.audio)


def test_segmenter_keeps_short_pauses_inside_a_turn_and_cuts_long_turns() -> None:
    rate = 16000
    clip, _ = audio.read_wav(asterisk("agent-alreadyon"), rate)
    pause = np.zeros(int(0.3 * rate), dtype=np.float32)
    gap = np.zeros(rate, dtype=np.float32)
    stream = np.concatenate([gap, clip, pause, clip, gap])
    whole = [e for e in _run_segmenter(stream, rate, end_of_turn_ms=600, max_utterance_s=20) if isinstance(e, Speech)]
    assert len(whole) == 1 and not whole[0].cut
    cut = [e for e in _run_segmenter(stream, rate, max_utterance_s=4.0) if isinstance(e, Speech)]
    assert len(cut) >= 3 and cut[0].cut and cut[0].duration <= 4.05
    silence = [e for e in _run_segmenter(np.zeros(3 * rate, dtype=np.float32), rate)]
    assert silence == []
