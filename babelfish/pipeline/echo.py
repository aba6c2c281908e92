"""Echo suppression: a caller on speakerphone feeds the translation they hear back into their own leg.

The server knows exactly what it plays on each leg and when, so the echo's source is known: we keep the
played audio on the leg's timeline, find the delay at which it reappears in the inbound audio
(cross-correlation, re-estimated while playback is active), and subtract the best-fitting scaled, delayed
copy. The segmenter then runs on the residual: echo alone leaves near-silence (no utterance), while the
caller's own voice over the echo (double talk) survives, so the leg is not deafened.

Written by hand because no maintained Python package offers echo cancellation against a reference we
hold ourselves (speexdsp/WebRTC AEC bindings are unmaintained or need a compiler toolchain of their own);
this is a single-tap canceller: enough for a delayed, attenuated copy (network echo, a phone's speaker
into its own microphone at a distance), not a full multi-path room response.
"""

from __future__ import annotations

import numpy as np

# How closely inbound audio must match what played to be muted as echo before the echo is located: an echo
# matches at about 1; at 0.5 another voice of the same timbre (telephone prompts by one speaker) was muted
# in places (tests/test_turns.py, the quiet caller)
ECHO_LIKE = 0.8


class EchoCanceller:
    def __init__(self, rate: int, *, max_delay_s: float = 0.8, history_s: float = 4.0,
                 min_correlation: float = 0.5) -> None:
        self.rate = rate
        self.max_delay = int(max_delay_s * rate)
        self.size = int(history_s * rate)
        self.min_correlation = min_correlation
        self._ref = np.zeros(self.size, dtype=np.float32)  # played audio, ring buffer by absolute sample index
        self._ref_written = -1  # highest absolute index written
        self._in = np.zeros(self.size, dtype=np.float32)  # inbound audio, same timeline
        self._in_written = -1
        self._t0: float | None = None
        self.delay: int | None = None  # samples, current estimate
        self._last_estimate = -10**9
        self.converge = int(0.6 * rate) + self.max_delay  # samples after playback starts
        self._active_since: int | None = None

    def _index(self, at: float) -> int:
        if self._t0 is None:
            self._t0 = at
        return int(round((at - self._t0) * self.rate))

    def _write(self, ring: np.ndarray, written: int, start: int, samples: np.ndarray) -> int:
        end = start + samples.size
        if end <= written - self.size:
            return written
        if start > written + 1:  # a gap: nothing played (or heard) there
            gap_from = max(written + 1, end - self.size, start - self.size)
            self._put(ring, gap_from, np.zeros(start - gap_from, dtype=np.float32))
        self._put(ring, start, samples)
        return max(written, end - 1)

    def _put(self, ring: np.ndarray, start: int, samples: np.ndarray) -> None:
        if samples.size > self.size:
            start, samples = start + samples.size - self.size, samples[-self.size :]
        i = start % self.size
        first = min(samples.size, self.size - i)
        ring[i : i + first] = samples[:first]
        ring[: samples.size - first] = samples[first:]

    def _read(self, ring: np.ndarray, written: int, start: int, end: int) -> np.ndarray:
        out = np.zeros(end - start, dtype=np.float32)
        lo, hi = max(start, written - self.size + 1), min(end, written + 1)
        if hi <= lo:
            return out
        i = lo % self.size  # at most two slices of the ring (an index array per read cost a tenth of a soak)
        first = min(hi - lo, self.size - i)
        out[lo - start : lo - start + first] = ring[i : i + first]
        out[lo - start + first : hi - start] = ring[: hi - lo - first]
        return out

    def played(self, samples: np.ndarray, start_at: float) -> None:
        """Audio that starts playing to the caller at monotonic time ``start_at``."""
        start = self._index(start_at)
        self._ref_written = self._write(self._ref, self._ref_written, start, samples)

    def clean(self, samples: np.ndarray, end_at: float) -> np.ndarray:
        """Inbound audio that ended arriving at ``end_at``; returns it with the echo removed.

        Inbound audio is placed by counting samples from the first frame (the sender's sample clock), not by
        arrival times, whose network jitter would smear the echo's alignment. A long block (frames batched up
        while the machine was busy) is cleaned in 100 ms pieces, so that a delay that moved inside it is found
        again within the block instead of leaving a whole second of echo behind."""
        piece = self.rate // 10
        if samples.size <= piece:
            return self._clean(samples, end_at)
        out = []
        for start in range(0, samples.size, piece):
            stop = min(start + piece, samples.size)
            out.append(self._clean(samples[start:stop], end_at - (samples.size - stop) / self.rate))
        return np.concatenate(out)

    def _clean(self, samples: np.ndarray, end_at: float) -> np.ndarray:
        if self._in_written < 0:
            end = self._index(end_at)
            if end - samples.size < 0:  # the very first audio: the timeline starts with it
                self._t0 = end_at - samples.size / self.rate if self._ref_written < 0 else self._t0
                end = self._index(end_at)
        else:
            end = self._in_written + 1 + samples.size
            drift = self._index(end_at) - end
            if abs(drift) > self.rate // 5:  # frames were lost or the sender stalled: re-anchor
                end += drift
        start = end - samples.size
        self._in_written = self._write(self._in, self._in_written, start, samples)
        reference = self._read(self._ref, self._ref_written, start - self.max_delay, end)
        if not np.any(reference):
            self._active_since = None
            return samples  # nothing played recently: nothing to cancel
        if self._active_since is None:
            # playback starts again after a silence: where its echo comes back is found afresh (the far
            # end's playout may have moved since the last one, and a stale delay lets the first echo through)
            self._active_since = end
            self.delay = None
        if end - self._last_estimate >= self.rate // 4 or self.delay is None:
            self._estimate_delay(end)
        candidate = samples
        if self.delay is not None:
            candidate, cancelled = self._cancel(samples, start, end)
            if not cancelled:
                # The delay moved (the far end's playout shifted) or the caller talks over the echo: locate it
                # again at once, on the last quarter second only, where the new delay already dominates.
                # While converging, the first lock may be wrong (speech is self-similar): the best lag replaces it.
                before = self.delay
                converging = end - self._active_since < self.converge
                self._estimate_delay(end, span=self.rate // 4, keep_unless_better=not converging)
                if self.delay != before:
                    candidate, cancelled = self._cancel(samples, start, end)
            if cancelled:
                return candidate  # cancelled by 10 dB or more
            self._last_estimate = -(10**9)  # still in doubt: estimate again with the next audio
        # Playback began moments ago and its echo is not reliably located yet: during that convergence time,
        # inbound audio quieter than what we play and matching it is taken for echo. Later, an echo we cannot
        # locate means there is none (a headset) or the caller talks over it: nothing is muted.
        if end - self._active_since < self.converge and _rms(candidate) < _played_level(reference) * 0.5:
            span = self.rate // 6  # long enough that a caller's own voice does not match by chance
            heard = self._read(self._in, self._in_written, end - span, end)
            played = self._read(self._ref, self._ref_written, end - span - self.max_delay, end)
            if _echo_like(heard, played, ECHO_LIKE):
                return np.zeros_like(samples)
        return candidate

    def _cancel(self, samples: np.ndarray, start: int, end: int) -> tuple[np.ndarray, bool]:
        """Subtract the best-scaled copy of what played ``delay`` earlier; whether that removed 10 dB."""
        assert self.delay is not None
        echo = self._read(self._ref, self._ref_written, start - self.delay, end - self.delay)
        power = float(np.dot(echo, echo))
        if power <= 1e-9:
            return samples, False
        gain = float(np.clip(np.dot(samples, echo) / power, 0.0, 2.0))
        candidate = (samples - gain * echo).astype(np.float32)
        return candidate, _rms(candidate) * 3 < _rms(samples) or _rms(samples) < 1e-4

    def _estimate_delay(self, end: int, span: int | None = None, *, keep_unless_better: bool = True) -> None:
        """Cross-correlate the last half second heard (or ``span``) with what was played up to max_delay
        before it. A new lag replaces a known delay only where it cancels more (``keep_unless_better``)."""
        self._last_estimate = end
        if span is None:
            span = self.rate // 2 if self.delay is not None else self.rate // 4
        heard = self._read(self._in, self._in_written, end - span, end)
        ref = self._read(self._ref, self._ref_written, end - span - self.max_delay, end)
        if not np.any(ref) or not np.any(heard):
            return
        normalized = _matches(heard, ref)  # [k]: heard against ref[k:], a delay of max_delay - k samples
        k = int(np.argmax(normalized))
        if normalized[k] < self.min_correlation:
            return
        candidate = self.max_delay - k
        if self.delay is None or candidate == self.delay or not keep_unless_better:
            self.delay = candidate
            return
        # Speech is self-similar: a correlation peak can move to a wrong lag for a moment. Keep whichever
        # delay actually cancels more of what was heard.
        if self._residual(heard, ref, k) < self._residual(heard, ref, self.max_delay - self.delay):
            self.delay = candidate

    @staticmethod
    def _residual(heard: np.ndarray, ref: np.ndarray, k: int) -> float:
        echo = ref[k : k + heard.size]
        power = float(np.dot(echo, echo))
        if power < 1e-9:
            return 1.0
        gain = max(0.0, float(np.dot(heard, echo)) / power)
        return _rms(heard - gain * echo) / (_rms(heard) + 1e-9)


def _played_level(reference: np.ndarray) -> float:
    """The RMS of what played in ``reference``, without the silence before playback began or after it ended:
    just after it began, most of the window is that silence, and its RMS would make the echo look loud."""
    sounding = np.flatnonzero(reference)
    return _rms(reference[sounding[0] : sounding[-1] + 1]) if sounding.size else 0.0


def _matches(heard: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``heard`` with every stretch of ``reference`` as long as it: [k] pairs
    heard[i] with reference[i + k]. 1 where ``heard`` is a scaled copy of that stretch."""
    lags = reference.size - heard.size + 1
    n = 1 << int(np.ceil(np.log2(reference.size + heard.size)))
    corr = np.fft.irfft(np.fft.rfft(reference, n) * np.conj(np.fft.rfft(heard, n)), n)[:lags]
    norm = float(np.sqrt(np.dot(heard, heard)))
    # the energy of each stretch by a running sum (a convolution with a heard-long kernel costs that many times
    # more, and this runs every quarter second of every leg that hears playback)
    running = np.concatenate([[0.0], np.cumsum(reference.astype(np.float64) ** 2)])
    energies = np.maximum(running[heard.size : heard.size + lags] - running[:lags], 0.0)
    # a stretch reaching into the silence before playback has almost no energy: without a floor (an echo is
    # at most twice as loud as what played) its tiny correlation divided by it would win
    windows = np.maximum(np.sqrt(energies), 0.5 * norm) + 1e-9
    return corr / (windows * norm + 1e-9)


def _echo_like(heard: np.ndarray, reference: np.ndarray, threshold: float) -> bool:
    """Whether ``heard`` matches some stretch of ``reference``: echo does, the caller's own voice does not.
    Used while the echo's delay is not yet known, so that a caller who talks as playback begins is not
    muted for being quieter than it."""
    if heard.size == 0 or reference.size < heard.size or not np.any(heard):
        return False
    return float(np.max(_matches(heard, reference))) >= threshold


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0
