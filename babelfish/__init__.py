"""babelfish: speech-to-speech phone interpretation."""

import os

# Whisper (CTranslate2) and llama.cpp each carry an OpenMP runtime whose threads spin between operations by
# default. On a small machine the two engines run at once (one caller recognized while the other's words are
# translated), and the spinning threads of one hold the cores the other needs: a translation beside
# recognition then takes about twice as long as with passive waiting, and a lone engine is no faster for the
# spinning (`babelfish bench threads`, figures in benchmarks/README.md). Set before either runtime loads; a
# value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
