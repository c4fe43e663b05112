"""Checkpoints as safetensors: tensors plus a JSON metadata record. Loading never unpickles.

Integrity: every checkpoint written by ``save_checkpoint`` records ``tensors_sha256`` (a hash of its tensors:
sorted names, dtype, shape and bytes) in its metadata, and ``load_checkpoint`` verifies it; files written
before that was recorded load unverified (``meta["integrity"]`` says so). The shipped checkpoints are also
listed in ``models/checkpoints/SHA256SUMS`` (sha256 of each file, ``write_shipped_hashes``), checked by
``verify_shipped`` before ``xai_core.models.zoo.load_model`` uses one. A mismatch, or weights that do not fit the
architecture (a wrong-size tensor), is one ``XaiError`` line naming the file and the fix.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xai_core.errors import XaiError
from xai_core.fsutil import file_sha256

from .architectures import MAX_PARAMETERS, build_model, parameter_count

META_KEY = "xai_core"
SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"  # the checkpoints shipped for bundled data
SUMS_NAME = "SHA256SUMS"
_FIX = "re-train it (python -m xai_core train ...) or re-download it"


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's tensors: sorted names, each tensor's dtype, shape and bytes (full sha256 hex)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the model's state dict and ``meta`` as a safetensors file, with the tensors' sha256 recorded.

    Parameters
    ----------
    model : nn.Module
        The model; its tensors are saved on the CPU.
    path : str or Path
        The ``.safetensors`` file (its folder is created).
    meta : dict
        Metadata; must hold ``arch``, ``arch_kwargs``, ``input_shape``, ``n_classes`` (``checkpoint_meta``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        When ``meta`` lacks one of the required keys.
    """
    for key in ("arch", "arch_kwargs", "input_shape", "n_classes"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs '{key}'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {**meta, "tensors_sha256": tensors_sha256(state)}
    meta.pop("integrity", None)  # a statement about a loaded file, not part of what is written
    save_file(state, str(path), metadata={META_KEY: json.dumps(meta, default=str)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of the checkpoint at ``path``, without loading its tensors (``XaiError`` if unreadable)."""
    path = Path(path)
    if not path.exists():
        raise XaiError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # noqa: BLE001 - corrupt or not a safetensors file
        raise XaiError(f"{path} is not a readable safetensors checkpoint ({e}); re-train or re-download it") from None
    if raw is None:
        raise XaiError(f"{path} has no xai_core metadata; save it with models.save_checkpoint")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise XaiError(f"{path} has damaged xai_core metadata (not JSON); {_FIX}") from None
    if not isinstance(meta, dict):
        raise XaiError(f"{path} has damaged xai_core metadata (not a JSON object); {_FIX}")
    return meta


def embedded_metadata(path: str | Path) -> dict[str, Any] | None:
    """Our metadata record of a safetensors file, or None for a plain safetensors file (corrupt: XaiError)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # noqa: BLE001 - corrupt or not a safetensors file
        raise XaiError(f"{path.name} is not a readable safetensors file ({e})") from None
    try:
        return json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        raise XaiError(f"{path.name} has damaged xai_core metadata (not JSON)") from None


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the architecture from the metadata and load the weights (strict), in eval mode.

    The tensors are checked against the ``tensors_sha256`` recorded at save time (older files without it load
    unverified: ``meta["integrity"]`` says which). Nothing is unpickled.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` checkpoint.
    device : str
        Where to put the model.

    Returns
    -------
    tuple of (nn.Module, dict)
        The model and its metadata, with ``integrity``, ``checkpoint_hash`` and ``path`` added.

    Raises
    ------
    XaiError
        One, naming the file and the fix, for a missing file, damaged metadata, too many declared parameters, a
        tensor-hash mismatch, unreadable tensors or weights that do not fit the architecture.
    """
    meta = read_metadata(path)
    try:
        n = parameter_count(meta["arch"], tuple(meta["input_shape"]), meta["n_classes"], **meta["arch_kwargs"])
        if n > MAX_PARAMETERS:  # refused before anything is allocated
            raise XaiError(f"checkpoint {path} declares a {meta['arch']} with {n:,} parameters (at most "
                           f"{MAX_PARAMETERS:,}): its metadata is damaged or not ours; {_FIX}")
        model = build_model(meta["arch"], tuple(meta["input_shape"]), meta["n_classes"], **meta["arch_kwargs"])
    except XaiError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise XaiError(f"checkpoint {path} has damaged or incomplete metadata ({type(e).__name__}: {e}); "
                       f"{_FIX}") from None
    try:
        state = load_file(str(path), device="cpu")  # checked on the CPU, then moved with the model below
    except Exception as e:  # noqa: BLE001 - corrupt tensor data or header
        raise XaiError(f"checkpoint {path} has unreadable tensors ({e}); {_FIX}") from None
    recorded = meta.get("tensors_sha256")
    if recorded is not None:
        if tensors_sha256(state) != recorded:
            raise XaiError(f"checkpoint {path} does not match the tensor hash recorded when it was saved: the "
                           f"file is damaged; {_FIX}")
        meta["integrity"] = "tensors_sha256 verified"
    else:
        meta["integrity"] = "not verified: written before checkpoints recorded tensors_sha256"
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # a wrong-size, missing or extra tensor
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e).splitlines()[0])
        raise XaiError(f"checkpoint {path} does not fit its architecture '{meta['arch']}' ({first}); "
                       f"{_FIX}") from None
    meta["checkpoint_hash"] = checkpoint_hash(path)
    meta["path"] = str(path)
    return model.to(device).eval(), meta


def checkpoint_hash(path: str | Path) -> str:
    """The first 16 hex digits of the sha256 of the checkpoint file's bytes (``meta["checkpoint_hash"]``).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def state_dict_hash(model: nn.Module) -> str:
    """Key of an in-memory model: its state dict (sorted names; each tensor's dtype, shape and bytes) and its
    class name. The same weights in a new object of the same class give the same key, in any process."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in sorted(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):  # a module's extra state
            h.update(f"|{name}|{t!r}|".encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# ---- the shipped checkpoints' recorded hashes ------------------------------------------------------


def _shipped_dir(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else SHIPPED_DIR


def write_shipped_hashes(directory: str | Path | None = None) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum`` format) for every ``*.safetensors`` in the shipped folder."""
    d = _shipped_dir(directory)
    lines = [f"{file_sha256(p)}  {p.name}" for p in sorted(d.glob("*.safetensors"))]
    out = d / SUMS_NAME
    out.write_text("\n".join(lines) + "\n")
    return out


def recorded_hashes(directory: str | Path | None = None) -> dict[str, str]:
    """{file name: sha256} from the shipped folder's ``SHA256SUMS`` (empty if there is none)."""
    p = _shipped_dir(directory) / SUMS_NAME
    if not p.is_file():
        return {}
    out = {}
    for line in p.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            out[name.lstrip("*")] = digest.lower()
    return out


def verify_shipped(path: str | Path, directory: str | Path | None = None) -> bool:
    """Check a checkpoint of the shipped folder against ``SHA256SUMS``: True if it matches, False if the
    file is not a shipped one or not listed; a mismatch raises one ``XaiError`` (restore it with git)."""
    path, d = Path(path), _shipped_dir(directory)
    try:
        if path.resolve().parent != d.resolve() or not path.is_file():
            return False
    except OSError:
        return False
    digest = recorded_hashes(d).get(path.name)
    if digest is None:
        return False
    if file_sha256(path) == digest:
        return True
    hint = ""
    try:  # a checkpoint re-trained on purpose (train --ship) verifies on its own: say how to record it
        if _tensors_verify(path):
            hint = (" (if you re-trained it on purpose with --ship, record it instead: python -c "
                    "'from xai_core.models.checkpoints import write_shipped_hashes; write_shipped_hashes()')")
    except Exception:  # noqa: BLE001 - damaged beyond reading: the restore advice stands
        pass
    raise XaiError(f"shipped checkpoint {path.name} does not match its recorded hash: the file is damaged; "
                   f"restore it with `git checkout -- {_repo_relative(path)}`{hint}")


def _tensors_verify(path: Path) -> bool:
    recorded = read_metadata(path).get("tensors_sha256")
    return recorded is not None and tensors_sha256(load_file(str(path), device="cpu")) == recorded


def _repo_relative(path: Path) -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
