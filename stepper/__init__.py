"""stepper: a step-through debugger for language models.

This package is the engine and the command line. It never imports `textual`; the
terminal front end lives in the top-level `widgets` package.

Shapes are written with one glossary everywhere in the engine:

    T  tokens (positions) in the current forward call
    S  positions held in the KV cache (context length so far)
    C  model width (embedding length)
    H  query heads;  Hkv  key/value heads (grouped-query attention when Hkv < H)
    D  head width (C // H)
    F  feed-forward width
    V  vocabulary size
    L  layers
"""

__version__ = "0.1.0"
