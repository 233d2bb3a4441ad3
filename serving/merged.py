"""A LoRA adapter merged into its base model's weights: a plain model folder.

vLLM's CPU build serves requests that name an adapter at about half the throughput of
base requests (``classroom bench learner``): every layer adds the LoRA products per
token. A phase that only evaluates one trained student (a test set after the episode,
a sweep that scores it) can be served from a copy whose weights already hold the
adapter (W + B·A·alpha/r): it runs at base speed, for the cost of one merge and one
engine start. ``classroom merge ADAPTER OUT`` writes that copy; a model spec serves it
with ``engine.model=OUT`` (and ``engine.enable_lora=false``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from classroom.serving.adapters import pack_adapter
from classroom.serving.errors import DataError

# Written last into a merged folder: which adapter, onto which base.
MERGE_MARKER = "classroom-merge.json"


class MergeError(DataError):
    """An adapter that cannot be merged: no adapter there, its base model not found, a
    target folder already in use."""


@dataclass(frozen=True)
class MergedModel:
    """Where a merge wrote its model and what went into it."""

    path: str
    base_model: str
    adapter_digest: str
    seconds: float


def adapter_base(adapter: str | Path) -> str:
    """The base model an adapter folder names (PEFT's ``base_model_name_or_path``)."""
    config = Path(adapter) / "adapter_config.json"
    try:
        return str(json.loads(config.read_text())["base_model_name_or_path"])
    except (OSError, ValueError, KeyError) as exc:
        raise MergeError(f"{adapter}: no readable adapter_config.json with base_model_name_or_path ({type(exc).__name__})") from None


def merge_adapter(adapter: str | Path, out: str | Path, *, base_model: str | None = None) -> MergedModel:
    """Merge the LoRA adapter folder ``adapter`` into its base model and save the result
    (weights in the base's dtype, tokenizer, generation config) into ``out``, which must
    not exist or be empty; written aside and renamed, so ``out`` is whole or absent.

    ``base_model`` is a config's model value (``embedded``, a local folder, a hub id);
    by default the base the adapter names, which must then be on this machine.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from classroom.serving.embedded import resolve_model

    started = time.perf_counter()
    try:
        files = pack_adapter(adapter)
    except ValueError as exc:
        raise MergeError(str(exc)) from None
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise MergeError(f"{target} exists and is not empty; name a new folder")
    if base_model is None:
        base_model = adapter_base(adapter)
        if not Path(base_model).is_dir():
            raise MergeError(f"the adapter's base model {base_model!r} is not a folder on this machine; name it with --base")
    base_path = resolve_model(base_model)
    # Merged in float32 (B·A added to W without rounding twice), saved in the base's dtype.
    stored = getattr(AutoConfig.from_pretrained(base_path), "dtype", None)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    if isinstance(stored, torch.dtype) and stored != torch.float32:
        merged = merged.to(stored)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        merged.save_pretrained(staging)
        AutoTokenizer.from_pretrained(base_path).save_pretrained(staging)
        (staging / MERGE_MARKER).write_text(json.dumps({"base_model": base_model, "adapter": str(adapter), "adapter_digest": files.digest}))
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return MergedModel(path=str(target), base_model=base_model, adapter_digest=files.digest, seconds=time.perf_counter() - started)
