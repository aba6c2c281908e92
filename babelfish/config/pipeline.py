"""The audio path's settings: how speech is cut into turns, and the engines that recognize, translate and
speak it (local models, Azure, or stages served by Ray). Part of :class:`babelfish.config.settings.Settings`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from babelfish.config import hardware
from babelfish.config.hardware import Device

DEVICE = ("'auto': CUDA where {library} finds a GPU, else the CPU; 'cpu'; 'cuda' (an error at startup where there "
          "is none). See docs/scaling.md (GPUs)")


class Section(BaseModel):
    """One ``[section]`` of the settings: a key it does not know is an error, not silently ignored (a
    misspelt ``end_of_trun_ms`` would otherwise leave the default in place without a word)."""

    model_config = ConfigDict(extra="forbid")


class SegmenterSettings(Section):
    """Voice activity detection and end-of-turn detection."""

    vad_threshold: float = Field(0.5, ge=0.05, le=0.95, description="Silero speech probability threshold")
    end_of_turn_ms: int = Field(500, ge=100, le=3000, description="silence that ends an utterance")
    min_speech_ms: int = Field(250, ge=20, description="shorter bursts of speech are ignored")
    pre_roll_ms: int = Field(200, ge=0, le=1000, description="audio kept before speech onset")
    max_utterance_s: float = Field(12.0, ge=1.0, le=60.0, description="long turns are cut here")
    speculate_ms: int = Field(
        100, ge=0, le=3000, description="start recognizing after this much silence, before the end of turn is "
        "sure; kept if the turn really ended (0: off)")
    partial_every_ms: int = Field(0, ge=0, description="partial captions interval while speaking (0: off)")
    end_of_turn: Literal["silence", "smart-turn"] = Field(
        "silence", description="'silence': a turn ends after end_of_turn_ms of silence; 'smart-turn': after "
        "smart_turn_after_ms, Pipecat's Smart Turn model says whether the turn is complete (then it ends at "
        "once) or not (then it ends after smart_turn_incomplete_ms of silence)")
    smart_turn_after_ms: int = Field(200, ge=20, le=3000, description="silence before Smart Turn is asked")
    smart_turn_threshold: float = Field(
        0.95, gt=0, lt=1, description="Smart Turn's probability of a complete turn at or above which the turn "
        "ends (the model's own boundary is 0.5; 0.95 was chosen on the dev split of `babelfish bench turns`)")
    smart_turn_incomplete_ms: int = Field(
        1000, ge=100, le=5000, description="silence that ends a turn Smart Turn found incomplete")



class InterpretationSettings(Section):
    """When a listener hears the translation: after the speaker's turn, or while they are still talking."""

    mode: Literal["consecutive", "simultaneous"] = Field(
        "consecutive", description="'consecutive': each turn is interpreted once it ends; 'simultaneous': a "
        "pause inside a turn (clause_pause_ms) commits the clause said so far, which is recognized, translated "
        "with the turn's earlier clauses as context and spoken while the speaker goes on (see "
        "benchmarks/README.md for what each mode measures)")
    clause_pause_ms: int = Field(
        200, ge=60, le=2000, description="simultaneous: a pause this long inside a turn ends a clause")
    max_clause_s: float = Field(
        6.0, ge=1.0, le=30.0, description="simultaneous: a clause with no such pause is cut at its quietest "
        "moment once it is this long")
    partial_every_ms: int = Field(
        1000, ge=0, le=5000, description="simultaneous: the clause in progress is recognized again this often "
        "while it is spoken, for partial captions; words two passes agree on are marked stable (0: off)")

    @property
    def simultaneous(self) -> bool:
        return self.mode == "simultaneous"


class TurnSettings(Section):
    """How the call behaves when people interrupt, overlap or use a speakerphone."""

    barge_in: bool = Field(True, description="a listener who starts speaking stops the translation they hear")
    echo_suppression: bool = Field(True, description="remove our own playback echoed back into a leg")
    stale_after_s: float = Field(
        6.0, ge=0.5, le=120.0, description="a translation not started this long after its utterance ended is "
        "dropped with a short notice")
    max_pending: int = Field(3, ge=1, le=16, description="translations waiting to play per listener")



class RecognizerSettings(Section):
    engine: Literal["whisper", "azure"] = Field(
        "whisper", description="'whisper' (offline) or 'azure' (Azure speech translation; needs translator.engine "
        "'azure' too)")
    model: str = Field("base", description="'base' (packaged), a faster-whisper size name or a model dir")
    beam_size: int = Field(1, ge=1, le=10)
    device: Device = Field("auto", description=DEVICE.format(library="CTranslate2"))
    cpu_threads: int | None = Field(
        None, ge=1, description="CTranslate2 threads; unset: half the cores this process may use, 2 to 8 (2 on two "
        "cores: babelfish/config/hardware.py)")
    compute_type: str | None = Field(
        None, description="CTranslate2 weight type ('int8', 'float16', 'int8_float16', ...); unset: int8 on the "
        "CPU, float16 on CUDA")
    min_window_s: float = Field(
        15.0, ge=1.0, le=30.0, description="shortest audio window Whisper encodes (30 = Whisper's own window)")
    window_by_language: dict[str, float] = Field(
        default_factory=dict, description="min_window_s for some languages (primary subtag), where the short "
        "window costs accuracy, e.g. {\"nl\": 30}; languages not set here get the window the dev clips chose "
        "for them (babelfish/engines/support.py RECOGNIZER_TUNING)")
    beam_by_language: dict[str, int] = Field(
        default_factory=dict, description="beam_size for some languages (primary subtag); unset ones get the "
        "dev clips' choice (RECOGNIZER_TUNING), else beam_size")
    context_lines: int = Field(
        0, ge=0, le=6, description="the room's last lines in the speaker's language given to Whisper as its "
        "prompt (0: none); see benchmarks/README.md for what it does to WER")

    @property
    def whisper_threads(self) -> int:
        """CTranslate2's threads: the setting, else derived from the cores (hardware.default_threads)."""
        return hardware.threads("whisper", self.cpu_threads)



class TranslatorSettings(Section):
    engine: Literal["llama", "ctranslate2", "azure"] = Field(
        "llama", description="'llama' (offline: translator.model through llama.cpp), 'ctranslate2' or 'azure' "
        "(with recognizer.engine 'azure'); 'gemma' is read as 'llama' with model 'gemma-270m'")
    model: Literal["qwen2.5-1.5b", "gemma-270m"] = Field(
        "qwen2.5-1.5b", description="the llama.cpp translator: 'qwen2.5-1.5b' (Qwen2.5-Coder-1.5B-Instruct, "
        "chat prompt) or 'gemma-270m' (Gemma-3-270M base, phrase-list prompt): see docs/translation.md")
    model_path: str | None = Field(
        None, description="another GGUF file with the same prompt format as translator.model (e.g. a larger "
        "Qwen2.5 instruct model you downloaded); default: the packaged weights")
    threads: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("threads", "gemma_threads"),
        description="llama.cpp (or CTranslate2) threads; unset: half the cores this process may use, 2 to 8, and "
        "for gemma-270m a quarter, 1 to 4 (it stays fast on one while other stages share the cores): 2 and 1 on "
        "two cores (babelfish/config/hardware.py)")
    device: Device = Field(
        "auto", description=DEVICE.format(library="llama.cpp (a build that offloads layers) or CTranslate2"))
    gpu_layers: int | None = Field(
        None, ge=-1, description="llama.cpp layers put on the GPU where the device is cuda; unset: all (-1). "
        "Fewer leave the rest on the CPU (a GPU too small for the model)")
    context_lines: int = Field(
        4, ge=0, le=12, description="the room's last lines (both speakers, source and translation) put before "
        "each sentence so pronouns, names and register carry over; 0: each sentence alone")
    prepare_context: bool = Field(
        True, description="after each utterance, while nobody speaks, evaluate the room's lines into the "
        "translator's cache for the next one (llama.cpp: the next prompt then costs only its own sentence)")
    flash_attention: bool | None = Field(
        None, description="llama.cpp's flash attention (nearly the same output, computed in fewer passes over the "
        "KV cache); unset: on for qwen2.5-1.5b (faster on 2 cores), off for gemma-270m (no faster, and its output "
        "changed more): see docs/translation.md")
    yield_to_voice_s: float = Field(
        1.5, ge=0, le=10, description="llama.cpp: while a voice synthesizes the first words a listener waits for, a "
        "translator past its own first clause pauses, up to this long per translation, so the two do not share "
        "the cores (babelfish/core/first_words.py); 0: never")
    max_tokens: int = Field(160, ge=8)
    # CTranslate2 (opus-mt / Argos / NLLB) models per language pair, e.g. {"de-en": "models/opus-mt-de-en"}.
    ctranslate2_models: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gemma_engine(cls, data: Any) -> Any:
        """``engine = "gemma"`` (before there was a choice of llama.cpp models) means the Gemma model."""
        if isinstance(data, dict) and data.get("engine") == "gemma":
            data = {**data, "engine": "llama", "model": data.get("model") or "gemma-270m"}
        return data

    @property
    def llama_threads(self) -> int:
        """llama.cpp's threads: the setting, else derived from the cores (hardware.default_threads)."""
        return hardware.threads("gemma" if self.model == "gemma-270m" else "llama", self.threads)



class GlossarySettings(Section):
    """How the operator's glossary (docs/glossary.md) reaches the stages."""

    translator: Literal["prompt", "inline", "both", "marked", "off"] = Field(
        "marked", description="how the translator is told a sentence's glossary terms: 'prompt' (a glossary line "
        "in the prompt: llama.cpp translators), 'inline' (the term written in its required rendering in the "
        "sentence it translates: any translator), 'both', 'marked' (inline, each rendering and name in quotation "
        "marks, taken out of the translation), or 'off'; chosen on the dev split of "
        "bench glossary (docs/glossary.md)")
    recognizer: bool = Field(
        True, description="bias the recognizer towards the glossary's spellings (Whisper's prompt) and write a "
        "near miss in what was recognized as the glossary has it")
    repair: bool = Field(
        True, description="a term the translator left as it was said is replaced by its required rendering")


class SynthesizerSettings(Section):
    engine: Literal["local", "azure", "vonage-talk"] = Field(
        "local", description="'local' (Piper / Kokoro / espeak-ng), 'azure' (Azure neural voices) or 'vonage-talk' "
        "(Vonage speaks the translation into the listener's call)")
    voices: dict[str, str] = Field(
        default_factory=dict, description="voice per language (primary subtag): 'kokoro:<style>', "
        "'piper:<name-or-path>', 'espeak:<voice>' or 'mbrola:<voice>'; unset languages get the embedded default "
        "(babelfish/engines/support.py)")
    kokoro_threads: int | None = Field(
        None, ge=1, le=64, description="threads Kokoro's ONNX session computes a piece with (it shares the cores "
        "with the translator writing the rest of the turn); unset: half the cores this process may use, 2 to 4 "
        "(2 on two cores: babelfish/config/hardware.py). Voices run on the CPU")
    piper_threads: int | None = Field(
        None, ge=1, le=64, description="threads of a Piper voice's ONNX session; unset: as kokoro_threads")



class AzureSettings(Section):
    """Azure AI Speech, for the Azure engines: a key (or an authorization token) and a region (or an endpoint)."""

    key: str | None = Field(None, repr=False, description="the Speech resource's key")
    token: str | None = Field(None, repr=False, description="an authorization token instead of the key (with region)")
    region: str | None = Field(None, description="the Speech resource's region, e.g. 'westeurope'")
    endpoint: str | None = Field(None, description="a custom endpoint instead of the region (with key)")
    voices: dict[str, str] = Field(
        default_factory=dict, description="synthesizer.engine 'azure': voice per language, e.g. "
        "{\"de\": \"de-DE-KatjaNeural\"}; unmapped languages get the service's default voice for the locale")



class DeploymentSettings(Section):
    """One stage's Ray Serve deployment."""

    num_replicas: int = Field(1, ge=1, description="replicas of the model (each loads its own copy)")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per replica")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (fractions share a GPU)")
    max_ongoing_requests: int = Field(8, ge=1, description="requests a replica takes at once")
    max_batch_size: int = Field(8, ge=1, description="requests batched into one engine call, where the engine "
                                "batches (translator)")
    batch_wait_timeout_s: float = Field(0.01, ge=0, description="how long a batch waits to fill")



class RaySettings(Section):
    """Model inference on Ray Serve: the stages listed run as deployments of one Serve application; every
    babelfish server calls them over the Ray cluster. Empty ``stages``: engines run in the process."""

    stages: list[Literal["recognizer", "translator", "synthesizer"]] = Field(
        default_factory=list, description="stages served by Ray Serve; each runs the engine its own section "
        "chooses (recognizer.engine, ...)")
    address: str | None = Field(
        None, description="Ray cluster address ('auto', 'ray://head:10001'); unset: a local Ray")
    app_name: str = Field("babelfish", description="the Serve application's name")
    recognizer: DeploymentSettings = Field(default_factory=DeploymentSettings)
    translator: DeploymentSettings = Field(default_factory=DeploymentSettings)
    synthesizer: DeploymentSettings = Field(default_factory=DeploymentSettings)
