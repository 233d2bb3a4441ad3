"""LoRA adapters as bytes: what travels from the process that trained one to the engines
that serve it.

A cluster's nodes share no filesystem: an adapter folder written by a trainer on one
node does not exist on the node of the engine that must load it. The caller packs the
folder's files (:func:`pack_adapter`, in its own process, where the folder is); Ray
carries them to the engine actor (through its object store), which writes them into
a folder of its own node (:func:`materialize`) and loads that. The pool's ledger keeps
the packed files, so an engine restarted on any node loads them back.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# What vLLM reads of an adapter folder (PEFT's files); anything else (training
# checkpoints, optimizer state, a README) stays behind.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "new_embeddings.safetensors")
# Where engines write the adapters they were sent, per node.
ADAPTERS_DIR_ENV = "CLASSROOM_ADAPTERS_DIR"


@dataclass(frozen=True)
class AdapterFiles:
    """An adapter folder's files, by name, and their content hash."""

    files: dict[str, bytes]
    digest: str

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


def pack_adapter(path: str | os.PathLike[str]) -> AdapterFiles:
    """Read an adapter folder's files; ValueError naming it if it has no adapter_config.json."""
    folder = Path(path)
    if not (folder / "adapter_config.json").is_file():
        raise ValueError(f"LoRA adapter folder {folder} has no adapter_config.json")
    files = {name: (folder / name).read_bytes() for name in ADAPTER_FILES if (folder / name).is_file()}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return AdapterFiles(files=files, digest=digest.hexdigest()[:20])


def adapters_root() -> Path:
    """This node's folder for adapters sent to its engines."""
    return Path(os.environ.get(ADAPTERS_DIR_ENV) or Path(tempfile.gettempdir()) / "classroom-adapters")


def materialize(adapter: AdapterFiles, root: Path | None = None) -> str:
    """Write the files into ``root/<digest>`` (once: same content, same folder) and
    return that folder; written aside and renamed, so a reader never sees half of it."""
    target = (root or adapters_root()) / adapter.digest
    if (target / "adapter_config.json").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{adapter.digest}-", dir=target.parent))
    for name, data in adapter.files.items():
        (staging / name).write_bytes(data)
    try:
        staging.rename(target)
    except OSError:  # another engine of this node wrote it first: the same bytes
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()
    return str(target)


def write_adapter(adapter: AdapterFiles, folder: str | os.PathLike[str]) -> str:
    """Write the files into ``folder`` (a run directory's adapter folder, on the node of
    the process that asked for the training); returns the folder."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name, data in adapter.files.items():
        staging = target / f".{name}.part"
        staging.write_bytes(data)
        staging.replace(target / name)  # each file whole or not at all
    return str(target)
