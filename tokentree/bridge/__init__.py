"""Bridge to real models (torch optional): per-token log-likelihoods against the token-tree theory.

``scoring`` (the scorer protocol, rates), ``tree_model`` (a token tree as a context
model) and ``coding`` (entropy coding of a model's predictions) need only numpy;
``hf`` (Hugging Face causal LMs, the built-in SmolLM2) and ``tiny`` (a small trainable
transformer) import torch when they are imported. Import the submodules directly.
"""

__all__: list[str] = []
