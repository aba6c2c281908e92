"""What the llama.cpp translators share: the model, the cached prompt prefix, streamed clauses.

A prompt is ``prefix + rest``: the prefix (instructions and examples) is the same for every sentence of one
language pair, so its KV cells are evaluated once per pair and put back from a copy when the pair changes
(every turn of a two-way call); ``rest`` holds the conversation context and the sentence. Output is
streamed: each finished clause is handed on at once (to synthesis, through :meth:`LlamaTranslator.stream`)
while the model writes the next. The prompt formats live in ``gemma.py`` (a phrase list for a base model)
and ``qwen.py`` (a chat template for an instruction-tuned one).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import re
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from babelfish.config import hardware
from babelfish.config.hardware import Device
from babelfish.core import glossary, languages
from babelfish.core.first_words import FIRST_WORDS
from babelfish.core.glossary import Rendering
from babelfish.core.worker import EngineError, Worker

log = logging.getLogger(__name__)

T = TypeVar("T")

Context = Sequence[tuple[str, str]]  # earlier lines of the room, each as (source-language, target-language)
Terms = Sequence[Rendering]  # the glossary entries a sentence contains (babelfish.core.glossary)

MAX_STATES = 12  # KV states kept (pair x conversation): Qwen 1.5B's cells are about 28 kB a token, 5-20 MB each
MAX_SOURCE_TOKENS = 240  # longer lines are cut in halves: the prompt has to fit n_ctx with the prefix


def clean(output: str) -> str:
    """The first line of ``output``, whitespace collapsed."""
    line = output.strip().split("\n", 1)[0].strip()
    return re.sub(r"\s+", " ", line)


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


def is_copy(source: str, output: str) -> bool:
    """Whether ``output`` is just the source again (case, punctuation and spacing aside)."""
    return bool(_key(source)) and _key(source) == _key(output)


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_ABBREVIATIONS = {"dr.", "mr.", "mrs.", "ms.", "st.", "nr.", "no.", "z.", "b.", "bzw.", "ca.", "etc.", "usw."}


def split_sentences(text: str) -> list[str]:
    """``"Hardly. But we could push it down."`` -> ``["Hardly.", "But we could push it down."]``.

    Splits after ``.!?…`` only where the next sentence starts with a capital letter, and not after a
    few common abbreviations, so ``"Hmm... and now"`` and ``"Dr. Smith"`` stay whole."""
    parts: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        head = piece.lstrip("\"'¿¡(“„«")
        last = parts[-1].split()[-1].lower().lstrip("\"'“„«(") if parts else ""  # '"Dr.' is "Dr."
        if parts and head[:1].isupper() and last not in _ABBREVIATIONS:
            parts.append(piece)
        elif parts:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return [p for p in parts if p.strip()] or [text]


def trim_runaway(text: str) -> str:
    """Cut a line that starts repeating itself (``"ja ja ja ja ..."``, a phrase looping) at the loop."""
    words = text.split()
    for size in range(1, 7):
        times = 4 if size == 1 else 3  # "no no no" is speech; a phrase three times over is a loop
        for start in range(0, len(words) - times * size + 1):
            chunk = words[start: start + size]
            if all(words[start + k * size: start + (k + 1) * size] == chunk for k in range(1, times)):
                return " ".join(words[: start + size])
    return text


# A clause ends at , ; : . ! ? … followed by a space; it is handed on once it has this many words, so that
# synthesis gets phrases rather than single words. Without punctuation a run of words is handed on at a
# word boundary once it is this long: sooner for the first (the listener is waiting for it), later after
# that (the listener is hearing it: the model writes faster than a voice speaks, so there are no gaps).
_CLAUSE_END = re.compile(r"[,;:.!?…]\s|[、。，；：！？]")  # Chinese and Japanese need no space after
MIN_CLAUSE_WORDS = 3


def word_count(text: str) -> int:
    """Words in ``text``; in Chinese and Japanese, written without spaces, every two characters count as one."""
    wide = sum(1 for c in text if "\u3040" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return len(text.split()) + wide // 2
FIRST_RUN_WORDS = 6
LATER_RUN_WORDS = 8


def take_clause(text: str, first: bool = False) -> tuple[str, str]:
    """``("Yes, I know. And you", ...)`` -> ``("Yes, I know.", "And you")``: the first complete clause of
    ``MIN_CLAUSE_WORDS`` words or more, or a run of complete words long enough to speak on its own (see
    above), and the rest; ``("", text)`` when there is none yet."""
    for match in _CLAUSE_END.finditer(text):
        head = text[: match.start() + 1].strip()
        if word_count(head) >= MIN_CLAUSE_WORDS:
            return head, text[match.end():]
    run = FIRST_RUN_WORDS if first else LATER_RUN_WORDS
    words = text.split()
    if len(words) > run or (len(words) == run and text[-1:].isspace()):  # the run's last word is complete
        spans = list(re.finditer(r"\S+", text))
        end = spans[run - 1].end()
        return text[:end].strip(), text[end:].lstrip()
    return "", text


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LlamaTranslator:
    """A GGUF model through llama.cpp; subclasses write the prompt (:meth:`prefix`, :meth:`rest`)."""

    name = "llama"
    stop_at: tuple[str, ...] = ("\n",)  # where the translation ends
    repeat_penalty = 1.1
    max_ratio = 3.0  # max new tokens = max_ratio * source tokens + 8 (capped by max_tokens)
    guard = True  # retry/fall back when the output is empty, a copy of the source, or loops
    split = True  # translate each sentence of a multi-sentence line on its own
    # Keep each pair's whole last state (and shift the context window in place), not only its prefix.
    # Off for models with sliding-window attention (Gemma 3): after a restore, llama.cpp does not drop
    # the cells past the new prompt from their window cache cleanly, and the output changes.
    keep_history = True
    yield_to_voice_s = 0.0  # translator.yield_to_voice_s, set by the factory (babelfish/core/first_words.py)
    _give_way_s = 0.0  # what the translation being written may still wait for voices

    def __init__(self, model_path: str | Path, *, threads: int | None = None, device: Device = "auto",
                 gpu_layers: int | None = None, max_tokens: int = 160, n_ctx: int = 1024,
                 swa_full: bool = False, flash_attention: bool = False) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed (make demo installs it)") from exc
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise EngineError(f"translator model {self.model_path} does not exist")
        self.device = hardware.llama_device(device, "translator.device")
        self.gpu_layers = hardware.gpu_layers(gpu_layers, self.device)
        self.threads = hardware.threads("gemma" if self.name == "gemma" else "llama", threads)
        self.llm = Llama(model_path=str(self.model_path), n_ctx=n_ctx, n_threads=self.threads,
                         n_threads_batch=self.threads, n_gpu_layers=self.gpu_layers, n_batch=256, swa_full=swa_full,
                         flash_attn=flash_attention, verbose=False)
        self.flash_attention = flash_attention
        self.max_tokens = max_tokens
        self.worker = Worker(self.name)
        # KV cells saved per (pair, conversation), oldest first: tokens, cells
        self._states: dict[tuple[tuple[str, str, object], int], tuple[list[int], bytes]] = {}
        self._current: tuple[tuple[str, str, object], int] | None = None  # whose cells the cache holds now
        self._slots = 0
        # the last translation's first clause, step by step (bench latency's breakdown; see clauses_sync)
        self.profile: dict[str, float] = {}
        self._waiting = 0  # translations queued behind a preparation: it stops at its next chunk
        self._waiting_lock = threading.Lock()

    def describe(self) -> str:
        """Model, device and threads, for the startup log."""
        layers = f", {'all' if self.gpu_layers < 0 else self.gpu_layers} layers on the GPU" if self.gpu_layers else ""
        flash = ", flash attention" if self.flash_attention else ""
        return (f"{self.name} {self.model_path.name} on {self.device}{layers}, {hardware.say_threads(self.threads)}"
                f"{flash}")

    # -- the prompt (subclasses) ------------------------------------------------------------------------
    def prefix(self, source: str, target: str) -> str:
        """Instructions and examples: identical for every sentence of one pair (cached)."""
        raise NotImplementedError

    def rest(self, text: str, source: str, target: str, context: Context, terms: Terms = ()) -> str:
        """The context lines and the sentence, ending where the model writes the translation; ``terms``:
        the glossary's renderings this sentence needs (formats without a place for them ignore them)."""
        raise NotImplementedError

    def rest_head(self, source: str, target: str, context: Context) -> str | None:
        """The start of :meth:`rest` that does not depend on the sentence (the context lines and the opening
        of the sentence's turn), or None where the format has none worth preparing."""
        return None

    def prompt(self, text: str, source: str, target: str, context: Context = (), terms: Terms = ()) -> str:
        return self.prefix(source, target) + self.rest(clean(text), source, target, context, terms)

    def _prefix_key(self, source: str, target: str) -> tuple[str, str, object]:
        return languages.primary(source), languages.primary(target), None

    # -- KV cache per language pair ---------------------------------------------------------------------
    def _warm_prefix(self, source: str, target: str, context: Context = ()) -> None:
        """Make the KV cache hold what this pair evaluated last in this conversation (its prefix, and the
        context and sentence of its previous call), so llama.cpp's own prefix match evaluates only what is new.

        A call alternates pairs every turn (A->B, B->A); each pair's cells are put back from a copy (a few
        MB, milliseconds) instead of evaluating its prompt again. The context of a room only grows between
        resets (``Room.context``), so the previous call's prompt and output are mostly a prefix of the
        next. Several rooms translating the same pair (several calls on one server) each keep a state of
        their own: the one whose tokens share the most with this call's context is put back, and a room
        the cache has not seen gets a new one instead of overwriting another room's. (``Llama.save_state``
        would also copy a logits row per token: about 1 MB each with a large vocabulary.)
        """
        key = self._prefix_key(source, target)
        head = self.rest_head(source, target, context) if self.keep_history and context else None
        if head is None:  # no conversation to tell apart: one state per pair
            if self._current is not None and self._current[0] == key:
                return
            self._put_back(key, self._latest(key), fresh=False)
            return
        wanted = self.llm.tokenize((self.prefix(source, target) + head).encode(), add_bos=True, special=True)
        best, shared = None, -1
        for slot, (tokens, _) in self._states.items():
            if slot[0] == key and (n := _common(tokens, wanted)) > shared:
                best, shared = slot, n
        if self._current is not None and self._current[0] == key:
            live = _common(self.llm.input_ids[: self.llm.n_tokens].tolist(), wanted)
            if live >= shared:
                best, shared = self._current, live
        # sharing no more than what every conversation of this pair shares (the instructions, the examples, the
        # opening of a turn): another conversation's state, or this one's before its context window moved on
        common = self.rest_head(source, target, ()) or ""
        fresh = shared <= len(self.llm.tokenize((self.prefix(source, target) + common).encode(), add_bos=True,
                                                special=True))
        if best == self._current and not fresh:
            return
        self._put_back(key, best, fresh)

    def _latest(self, key: tuple[str, str, object]) -> tuple[tuple[str, str, object], int] | None:
        """The state saved last for this pair."""
        return next((slot for slot in reversed(self._states) if slot[0] == key), None)

    def _put_back(self, key: tuple[str, str, object], slot: tuple[tuple[str, str, object], int] | None,
                  fresh: bool) -> None:
        """Save the live state, then restore ``slot`` (or evaluate the pair's prefix); ``fresh``: what is
        written from now on is a new conversation's, saved in a slot of its own."""
        if self.keep_history:
            self._save_current()
        if slot is not None and slot == self._current and fresh:  # the cache holds it already: a new slot only
            self._slots += 1
            self._current = (key, self._slots)
            return
        saved = self._states.get(slot) if slot is not None else None
        if saved is None or not self._restore(*saved):
            self.llm.reset()
            self.llm.eval(self.llm.tokenize(self.prefix(key[0], key[1]).encode(), add_bos=True, special=True))
            slot, fresh = None, True
        if fresh or slot is None:
            self._slots += 1
            slot = (key, self._slots)
        self._current = slot
        if not self.keep_history and slot not in self._states:
            self._save_current()  # the prefix alone, put back every time the pair comes round

    def _save_current(self) -> None:
        import llama_cpp

        if self._current is None or not self.llm.n_tokens or (not self.keep_history and self._current in self._states):
            return
        ctx = self.llm.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        self._states.pop(self._current, None)
        if len(self._states) >= MAX_STATES:
            self._states.pop(next(iter(self._states)))  # the one used longest ago
        self._states[self._current] = (list(self.llm.input_ids[: self.llm.n_tokens]), bytes(buf)[:n])

    def _restore(self, tokens: list[int], blob: bytes) -> bool:
        import llama_cpp

        ctx = self.llm.ctx
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), -1, -1, -1)
        buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
        if llama_cpp.llama_state_seq_set_data(ctx, buf, len(blob), 0) != len(blob):
            return False
        self.llm.input_ids[: len(tokens)] = tokens
        self.llm.n_tokens = len(tokens)
        return True

    def _slide_window(self, prompt: str, source: str, target: str) -> None:
        """When the context has moved on (``Room.context`` drops its oldest lines every few turns), keep
        the lines that are still there instead of evaluating them again: drop the cells of the lines that
        left and shift the rest down (llama.cpp re-rotates their keys), so the cache is a prefix of
        ``prompt`` once more. Costs nothing when the context only grew."""
        import llama_cpp

        old = self.llm.input_ids[: self.llm.n_tokens].tolist()
        new = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        keep = len(self.llm.tokenize(self.prefix(source, target).encode(), add_bos=True, special=True))
        p = _common(old, new)
        if p < keep - 1 or p >= len(new) - 1:
            return
        best_d, best_m = 0, 0
        for d in range(1, len(old) - p):
            if old[p + d] == new[p] and (m := _common(old[p + d:], new[p:])) > best_m:
                best_d, best_m = d, m
        mem = llama_cpp.llama_get_memory(self.llm.ctx)
        if best_m < 16 or not llama_cpp.llama_memory_can_shift(mem):
            return
        llama_cpp.llama_memory_seq_rm(mem, -1, p + best_d + best_m, -1)
        llama_cpp.llama_memory_seq_rm(mem, -1, p, p + best_d)
        llama_cpp.llama_memory_seq_add(mem, 0, p + best_d, p + best_d + best_m, -best_d)
        self.llm.input_ids[p: p + best_m] = new[p: p + best_m]
        self.llm.n_tokens = p + best_m

    # -- generation -------------------------------------------------------------------------------------
    def _pieces(self, prompt: str, n_tokens: int, repeat_penalty: float) -> Iterator[str]:
        """The model's output as it is written, stopped at the end of the translation."""
        chunks = self.llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, top_k=1,
                                            repeat_penalty=repeat_penalty, stop=list(self.stop_at), stream=True)
        for chunk in chunks:
            yield chunk["choices"][0]["text"]  # type: ignore[index]

    def _complete(self, prompt: str, n_tokens: int, repeat_penalty: float) -> str:
        return clean("".join(self._pieces(prompt, n_tokens, repeat_penalty)))

    def _budget(self, n_prompt: int, n_source: int) -> int:
        room = self.llm.n_ctx() - n_prompt - 1
        return max(1, min(self.max_tokens, int(self.max_ratio * n_source) + 8, room))

    def _line_clauses(self, text: str, source: str, target: str, context: Context,
                      stop: threading.Event | None = None, terms: Terms = ()) -> Iterator[str]:
        """One sentence's translation, clause by clause as the model finishes them."""
        n_source = len(self.llm.tokenize(text.encode(), add_bos=False))
        words = text.split()
        if n_source > MAX_SOURCE_TOKENS and len(words) > 1:  # a run-on line: halves, so the context fits
            half = len(words) // 2
            for part in (words[:half], words[half:]):
                yield from self._line_clauses(" ".join(part), source, target, context, stop, terms)
            return
        prompt = self.prompt(text, source, target, context, terms)
        if context and self.keep_history:
            self._slide_window(prompt, source, target)
        tokens = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        budget = self._budget(len(tokens), n_source)
        profile, started = self.profile, time.monotonic()
        if "prompt_tokens" not in profile:  # the first sentence of the line: what its prompt costs
            cached = _common(self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens)
            profile["prompt_tokens"] = float(len(tokens))
            profile["evaluated_tokens"] = float(len(tokens) - min(cached, len(tokens) - 1))
        written, handed = "", 0  # what the model wrote; how much of it has been handed on
        for piece in self._pieces(prompt, budget, self.repeat_penalty):
            if stop is not None and stop.is_set():
                return  # nobody listens any more (the speaker went on talking): free the model now
            if "first_token_s" not in profile:  # the prompt evaluated and one token sampled
                profile["first_token_s"] = time.monotonic() - started
                profile["first_token_at"] = time.monotonic()
            profile["tokens"] = profile.get("tokens", 0.0) + 1
            written += piece
            if "\n" in written.lstrip() or (self.guard and trim_runaway(written.strip()) != written.strip()):
                break  # past the line, or looping: stop paying for it
            while True:
                clause, rest = take_clause(written[handed:], first=self._first)
                if not clause:
                    break
                yield clause
                handed = len(written) - len(rest)
            if not self._first and self._give_way_s > 0:  # a listener waits for a voice: let it have the cores
                self._give_way_s -= FIRST_WORDS.give_way(self._give_way_s)
        if handed:
            tail = clean(written[handed:])
            if tail := trim_runaway(tail) if self.guard else tail:
                yield tail
            return
        result = clean(written)
        if not self.guard:
            if result:
                yield result
            return
        result = trim_runaway(result)
        if not result or is_copy(text, result):
            # A second try that penalises repeating the source's tokens (they are in the last-n window).
            retry = trim_runaway(self._complete(prompt, budget, max(self.repeat_penalty, 1.3)))
            if retry and not is_copy(text, retry):
                yield retry
                return
            log.debug("%s gave no translation for %r (%s->%s)", self.name, text, source, target)
            # Short lines (names, numbers, "OK") are often the same in both languages; otherwise pass the
            # source through rather than nothing, so the listener still hears what was said.
            yield result or retry or text
            return
        yield result

    def clauses_sync(self, text: str, source: str, target: str, context: Context = (),
                     stop: threading.Event | None = None, terms: Terms = ()) -> Iterator[str]:
        """The translation of ``text``, clause by clause; ``context``: the room's earlier lines; ``stop``:
        set it to end the generation at the next token; ``terms``: the glossary's renderings it needs
        (each sentence of the line is given those it contains)."""
        text = clean(text)
        if not text:
            return
        if languages.primary(source) == languages.primary(target):
            yield text
            return
        started = time.monotonic()
        self.profile = profile = {}
        self._warm_prefix(source, target, context)
        profile["restore_s"] = time.monotonic() - started
        self._first = True  # the translation's first words are handed on soonest (see take_clause)
        self._give_way_s = self.yield_to_voice_s  # what this translation may wait for voices (first_words)
        held: list[str] = []  # a sentence too short to speak alone ("Good morning."): a gap would follow it

        def handed(clause: str) -> str:
            if "first_clause_s" not in profile:
                now = time.monotonic()
                profile["first_clause_s"] = now - started
                profile["first_clause_tokens"] = profile.get("tokens", 0.0)
                profile["to_first_clause_s"] = now - profile.get("first_token_at", now)
            return clause

        for part in split_sentences(text) if self.split else [text]:
            if stop is not None and stop.is_set():
                return
            needed = [t for t in terms if glossary.contains(part, t.said)]
            for piece in self._line_clauses(part, source, target, context, stop, needed):
                held.append(piece)
                if word_count(" ".join(held)) >= MIN_CLAUSE_WORDS:
                    yield handed(" ".join(held))
                    held, self._first = [], False
        if held:
            yield handed(" ".join(held))

    def prepare_sync(self, source: str, target: str, context: Context = (), chunk: int = 32) -> int:
        """Evaluate this pair's prompt up to where the next sentence will go (instructions, examples, the
        room's lines and the opening of the sentence's turn) into the KV cache, so the next translation
        evaluates only its sentence. Run while nobody waits: a translation queued behind it stops it at the
        next ``chunk`` of tokens (what was evaluated stays useful). Returns the tokens evaluated."""
        head = self.rest_head(source, target, context) if self.keep_history else None
        if head is None or languages.primary(source) == languages.primary(target):
            return 0
        self._warm_prefix(source, target, context)
        prompt = self.prefix(source, target) + head
        if context:
            self._slide_window(prompt, source, target)
        tokens = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        cached = _common(self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens)
        self.llm.n_tokens = cached  # eval() drops the cells past it (another sentence, its translation)
        for start in range(cached, len(tokens), chunk):
            if self._waiting:
                break
            self.llm.eval(tokens[start : start + chunk])
        return self.llm.n_tokens - cached

    async def prepare(self, source: str, target: str, context: Context = ()) -> int:
        """:meth:`prepare_sync` on the model's thread, only when it is idle (a translation running or queued
        comes first: then nothing is prepared)."""
        if self.worker.busy:
            return 0
        return await self.worker.run(self.prepare_sync, source, target, list(context))

    # the glossary's renderings go into the prompt (see rest); the pipeline passes them only to translators
    # that say so
    takes_terms = True

    def translate_sync(self, text: str, source: str, target: str, context: Context = (), terms: Terms = ()) -> str:
        return " ".join(self.clauses_sync(text, source, target, context, terms=terms))

    async def translate(self, text: str, source: str, target: str, context: Context = (),
                        terms: Terms = ()) -> str:
        return await self._run(self.translate_sync, text, source, target, context, list(terms))

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """A translation on the model's thread; while it waits for the thread, a preparation running there
        stops at its next chunk (:meth:`prepare_sync`)."""
        state = {"started": False}

        def run() -> T:
            with self._waiting_lock:
                self._waiting -= 1
                state["started"] = True
            return fn(*args)

        with self._waiting_lock:
            self._waiting += 1
        try:
            return await self.worker.run(run)
        finally:
            with self._waiting_lock:
                if not state["started"]:  # cancelled before it ran
                    self._waiting -= 1

    async def stream(self, text: str, source: str, target: str, context: Context = (),
                     terms: Terms = ()) -> AsyncIterator[str]:
        """:meth:`clauses_sync` as one job on the worker thread, each clause delivered as soon as it is
        written. (One job, not one per clause: another translation must not run between two clauses of
        this one, it would take over the model's KV cache.) Stopping early (closing this iterator, or
        cancelling its reader) ends the generation at the next token."""
        loop = asyncio.get_running_loop()
        # Bounded by the generation itself: at most max_tokens tokens, so a few dozen clauses.
        clauses: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for clause in self.clauses_sync(text, source, target, context, stop, list(terms)):
                    loop.call_soon_threadsafe(clauses.put_nowait, clause)
            finally:
                loop.call_soon_threadsafe(clauses.put_nowait, None)

        job = asyncio.ensure_future(self._run(produce))
        try:
            while (clause := await clauses.get()) is not None:
                yield clause
            await job  # raises what the generation raised
        finally:
            stop.set()
