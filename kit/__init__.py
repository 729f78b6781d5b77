"""kit: fine-tuning representation models for retrieval and RAG, the library behind the notebooks.

One module per concern (import what you need; nothing heavy is imported here):

- ``kit.config``    the FAST switch (``KIT_FAST=1``), data and cache folders
- ``kit.data``      BEIR-format datasets: load, validate, save; training views
- ``kit.models``    offline-first loading of bi-encoders and cross-encoders
- ``kit.retrieval`` dense search, BM25, fusion, re-ranking
- ``kit.evaluate``  ir-measures metrics, per-query scores, paired significance
- ``kit.train``     bi-encoder recipes, freezing, adapters
- ``kit.plots``     the figures the notebooks draw
- ``kit.cache``     artifacts shared across notebooks
- ``kit.cli``       ``python -m kit``

>>> import kit
>>> kit.__version__
'0.1.0'
"""
__version__ = "0.1.0"
