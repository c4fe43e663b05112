"""Model files a user brings: one registered loader per format, found by content first, then by suffix.

Formats: ``safetensors`` (a state dict + a built-in architecture named in our metadata, a JSON side file or
``meta``), ``pt2`` (``torch.export.save``), ``torchscript`` (``torch.jit.save``), ``state_dict`` (``.pt``/
``.pth`` read only with ``torch.load(weights_only=True)``), and ``code`` (a Python class from a file + its
weights; runs the user's code, so it is for the CLI and Python, never a browser upload).

Nothing here unpickles: ``.pt`` files go through ``weights_only=True``; a ``.pt2`` archive is checked first
for pickled entries (``torch.export.load`` would unpickle those, and falls back to ``weights_only=False``
for sample inputs), and only the pt2-archive reader is used, never its legacy pickle path. TorchScript's
``data.pkl`` is read by TorchScript's own loader, which rebuilds only TorchScript types.

Exported programs and TorchScript modules are not *eager*: their layers are not ``nn.Module`` objects that
hooks can reach, so methods flagged ``needs_eager`` (LRP, GradCAM, Guided Backprop, DeepLIFT, ...) refuse them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as st_load
from torch import nn

from xai_core.errors import XaiError
from xai_core.registry import Registry

from .architectures import ARCHS, build_model
from .checkpoints import embedded_metadata

OUTPUTS = ("logits", "probabilities")
FIX_EAGER = "load the model as safetensors + architecture or --model-code"


class ModelFileError(XaiError):
    """A model file that cannot be read (corrupt, unknown format, missing architecture, mismatched weights)."""


class PickleRefused(ModelFileError):
    """A file whose content would have to be unpickled (Python objects, a whole pickled module)."""


class ModelCheckError(XaiError):
    """A model that does not fit the dataset (input shape, number of outputs)."""


# -- wrappers ---------------------------------------------------------------------------------------
class ProbabilitiesAsLogits(nn.Module):
    """A model that outputs probabilities, seen by the engine as logits: ``log(clamp(p, eps))``.

    softmax(log p) = p / sum(p) = p for probabilities summing to 1, so "probability" explanations of the
    wrapped model are those of the original. A single output (a sigmoid probability) becomes the logit
    ``log p - log(1 - p)``, whose sigmoid is p again.
    """

    def __init__(self, model: nn.Module, eps: float = 1e-12):
        super().__init__()
        self.model, self.eps = model, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.model(x)
        if p.shape[1] == 1:
            p = p.clamp(self.eps, 1 - self.eps)
            return torch.log(p) - torch.log1p(-p)
        return torch.log(p.clamp_min(self.eps))


class ExportedModule(nn.Module):
    """``ExportedProgram.module()`` made usable by the engine: ``train()``/``eval()`` only set a flag (the
    program's mode was fixed at export; the graph module refuses ``eval()``), and a program traced with a
    fixed batch size is run in chunks of that size (the last chunk padded with copies of its last row)."""

    def __init__(self, gm: nn.Module, batch: int | None = None, input_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.gm, self.batch, self.input_shape = gm, batch, input_shape

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.batch
        if b is None or len(x) == b:
            return self.gm(x)
        outs = []
        for i in range(0, len(x), b):
            chunk = x[i:i + b]
            k = len(chunk)
            if k < b:
                chunk = torch.cat([chunk, chunk[-1:].expand(b - k, *chunk.shape[1:])])
            outs.append(self.gm(chunk)[:k])
        return torch.cat(outs)


def is_eager(model: nn.Module) -> bool:
    """False when any part is TorchScript or an fx graph (e.g. from ``torch.export``): no module hooks."""
    return not any(isinstance(m, (torch.jit.ScriptModule, torch.fx.GraphModule)) for m in model.modules())


# -- the format registry ------------------------------------------------------------------------------
@dataclass
class LoadRequest:
    """What a loader gets: the file, the dataset's shape, and the user's extra inputs."""

    path: Path | None
    input_shape: tuple[int, ...]
    n_classes: int
    meta: dict[str, Any] | None = None  # {"arch": ..., "arch_kwargs": {...}} from --model-meta / a side file
    code: str | None = None  # "FILE.py:ClassName"
    model_args: dict[str, Any] | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class ModelFormat:
    name: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes, list[str] | None], bool]  # (first bytes, zip member names or None) -> is it mine
    load: Callable[[LoadRequest], tuple[nn.Module, dict[str, Any]]]  # -> (module, info)
    description: str


FORMATS: Registry[ModelFormat] = Registry("model format")


def register_format(name: str, suffixes: tuple[str, ...], sniff, description: str):
    return FORMATS.decorator(name, lambda fn: ModelFormat(name, suffixes, sniff, fn, description))


def _zip_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _rel(names: list[str]) -> list[str]:
    """Member names without the archive's root folder ('m/code/x.py' -> 'code/x.py')."""
    return [n.split("/", 1)[1] if "/" in n else n for n in names]


def supported() -> str:
    return ("supported: " + "; ".join(f"{f.name} ({', '.join(f.suffixes) or 'by content'}): {f.description}"
                                      for f in FORMATS.values()))


def detect_format(path: str | Path) -> ModelFormat:
    """The format of ``path``: by content (safetensors header, zip members), else by suffix."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(64)
    names = _zip_names(path)
    for fmt in FORMATS.values():
        if fmt.sniff(head, names):
            return fmt
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise ModelFileError(f"cannot tell the model format of {path.name}; {supported()}")


def load_file(req: LoadRequest) -> tuple[nn.Module, dict[str, Any]]:
    """Load ``req.path`` (or ``req.code`` with weights at ``req.path``) in eval mode; info has format, eager."""
    fmt = FORMATS.get("code") if req.code else detect_format(req.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation notices
        model, info = fmt.load(req)
    model = model.to(req.device)
    model.eval()
    return model, {"format": fmt.name, "eager": is_eager(model), **info}


def file_digest(files: list[Path], config: dict[str, Any]) -> str:
    """The store key of a file-based model: its files' bytes and how they are read (architecture, class,
    arguments, output kind). The same file read the same way gives the same key in every process."""
    h = hashlib.sha256()
    for p in files:
        h.update(hashlib.sha256(Path(p).read_bytes()).digest())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# -- reading weights and architecture descriptions ----------------------------------------------------
def torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file, read with ``weights_only=True`` only."""
    names = _zip_names(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        msg = str(e)
        glob = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg)
        head = path.read_bytes()[:2]
        if glob or (names is not None and any(n.endswith("data.pkl") for n in names)) or head[:1] == b"\x80":
            what = f"it holds the Python object {glob.group(1)}" if glob else "it is a Python pickle"
            raise PickleRefused(f"refusing to unpickle {path.name}: {what}, and loading it could run code; save a "
                                f"state dict or safetensors (torch.save(model.state_dict(), PATH))") from None
        raise ModelFileError(f"{path.name} is not a readable PyTorch file (corrupt or another format); "
                             f"{supported()}") from None
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = [obj[k] for k in ("state_dict", "model_state_dict", "model") if isinstance(obj.get(k), dict)]
        obj = inner[0] if inner else obj
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(f"{path.name} does not hold a state dict (name -> tensor); save one with "
                             f"torch.save(model.state_dict(), PATH) or as safetensors")
    return obj


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        out = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{what} {path} is not readable JSON ({e})") from None
    if not isinstance(out, dict):
        raise ModelFileError(f"{what} {path} must hold an object like {{\"arch\": \"mlp\", \"arch_kwargs\": {{}}}}")
    return out


def side_meta(path: Path | None) -> dict[str, Any] | None:
    """The JSON side file of a weights file: ``PATH.json`` (``model.pt.json``) or ``model.json``."""
    if path is None:
        return None
    for p in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if p.is_file() and p != path:
            return _read_json(p, "model side file")
    return None


def _arch_meta(req: LoadRequest, embedded: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = req.meta or side_meta(req.path) or embedded
    if not meta or "arch" not in meta:
        name = req.path.name if req.path else "the weights"
        raise ModelFileError(
            f"{name} holds weights without an architecture; write {name}.json with "
            f"{{\"arch\": \"mlp\", \"arch_kwargs\": {{...}}}} (a built-in architecture) or pass --model-meta FILE, "
            f"or give the model's class with --model-code FILE.py:ClassName --weights {name}")
    return meta


def _strict_load(model: nn.Module, state: dict[str, torch.Tensor], what: str, name: str) -> None:
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:4]}" if missing else "", f"unexpected {unexpected[:4]}" if unexpected else "",
                 ("shape differs for " + ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                                                   for k in wrong[:3])) if wrong else ""]
        raise ModelFileError(f"the weights in {name} do not fit {what}: {'; '.join(p for p in parts if p)}")
    model.load_state_dict(state, strict=True)


def _build_arch(meta: dict[str, Any], req: LoadRequest, state: dict[str, torch.Tensor], name: str):
    arch = meta["arch"]
    if arch not in ARCHS:
        raise ModelFileError(f"unknown architecture '{arch}' in the metadata of {name}; built-in: "
                             f"{', '.join(ARCHS.names())} (or use --model-code FILE.py:ClassName)")
    kwargs = meta.get("arch_kwargs") or {}
    try:
        model = build_model(arch, req.input_shape, req.n_classes, **kwargs)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"cannot build architecture '{arch}' for {name}: {e}") from None
    _strict_load(model, state, f"architecture '{arch}' with {kwargs or 'default options'} for inputs "
                               f"{req.input_shape} and {req.n_classes} classes", name)
    info = {"arch": arch, "arch_kwargs": kwargs}
    return model, ({**info, "output": meta["output"]} if meta.get("output") else info)


# -- formats (the order of registration is the order of content sniffing) -------------------------------
def _is_safetensors(head: bytes, names) -> bool:
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


@register_format("safetensors", (".safetensors",), _is_safetensors,
                 "a state dict + a built-in architecture from our metadata, PATH.json or --model-meta")
def _load_safetensors(req: LoadRequest):
    try:
        embedded = embedded_metadata(req.path)
    except XaiError as e:
        raise ModelFileError(str(e)) from None
    meta = _arch_meta(req, embedded)
    try:
        state = st_load(str(req.path), device="cpu")
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{req.path.name} is not a readable safetensors file ({e})") from None
    return _build_arch(meta, req, state, req.path.name)


def _is_pt2(head: bytes, names) -> bool:
    return names is not None and "archive_format" in _rel(names)


def _check_pt2(path: Path, names: list[str]) -> None:
    """Refuse a .pt2 archive whose loading would unpickle anything."""
    from torch.export.pt2_archive import constants as C  # noqa: PLC0415 - torch.export: about 2 s, only for .pt2 files

    def refuse(what: str):
        raise PickleRefused(f"refusing to unpickle {path.name}: its {what} is pickled, and loading it could run "
                            f"code; save a state dict or safetensors (or re-export with plain tensors)")

    with zipfile.ZipFile(path) as z:
        for full, rel in zip(names, _rel(names)):
            if rel == C.ARCHIVE_FORMAT_PATH and z.read(full).decode(errors="replace").strip() != C.ARCHIVE_FORMAT_VALUE:
                raise ModelFileError(f"{path.name} is not a torch.export archive (format "
                                     f"{z.read(full)[:20]!r}); save it with torch.export.save")
            if rel.startswith((C.WEIGHTS_DIR, C.CONSTANTS_DIR)) and rel.endswith(".pt"):
                refuse(f"legacy {rel}")
            if rel.startswith((C.WEIGHTS_DIR, C.CONSTANTS_DIR)) and rel.endswith("_config.json"):
                try:
                    config = json.loads(z.read(full)).get("config", {})
                except (json.JSONDecodeError, AttributeError):
                    raise ModelFileError(f"{path.name} is damaged ({rel} is not JSON); export it again") from None
                for fqn, payload in config.items():
                    if payload.get("use_pickle") or (rel.startswith(C.CONSTANTS_DIR) and not str(
                            payload.get("path_name", "")).startswith(C.TENSOR_CONSTANT_FILENAME_PREFIX)):
                        refuse(f"entry '{fqn}'")
            if rel.startswith(C.SAMPLE_INPUTS_DIR):  # torch would retry these with weights_only=False
                try:
                    torch.load(io.BytesIO(z.read(full)), map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001
                    refuse(f"sample input {rel}")


@register_format("pt2", (".pt2",), _is_pt2, "a torch.export program (torch.export.save); not eager")
def _load_pt2(req: LoadRequest):
    path = req.path
    names = _zip_names(path)
    if names is None:
        raise ModelFileError(f"{path.name} is not a readable torch.export archive (corrupt or another format); "
                             f"save it with torch.export.save")
    _check_pt2(path, names)
    try:
        from torch.export.pt2_archive._package import (  # noqa: PLC0415 - torch.export: about 2 s, only for .pt2 (in the try: missing = ModelFileError)
            load_pt2,  # the archive reader, without the legacy fallback
        )

        programs = load_pt2(str(path)).exported_programs
        ep = programs.get("model") or next(iter(programs.values()))
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{path.name} could not be read as a torch.export program ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None
    user = set(ep.graph_signature.user_inputs)
    ph = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in user]
    val = ph[0].meta.get("val") if ph else None
    shape = tuple(val.shape) if val is not None else None
    batch = shape[0] if shape and isinstance(shape[0], int) else None
    traced = tuple(int(s) if isinstance(s, int) else -1 for s in shape[1:]) if shape else None
    info = {"traced_input_shape": traced, "static_batch": batch}
    return ExportedModule(ep.module(), batch=batch, input_shape=traced), info


def _is_torchscript(head: bytes, names) -> bool:
    return names is not None and any(r.startswith("code/") for r in _rel(names))


@register_format("torchscript", (".ts", ".torchscript", ".jit"), _is_torchscript,
                 "a TorchScript module (torch.jit.save; also .pt archives); not eager")
def _load_torchscript(req: LoadRequest):
    try:
        return torch.jit.load(str(req.path), map_location=req.device), {}
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{req.path.name} is not a readable TorchScript file ({type(e).__name__}: "
                             f"{(str(e).strip().splitlines() or [''])[0][:200]})") from None


def _is_torch_save(head: bytes, names) -> bool:
    return names is not None and any(r == "data.pkl" for r in _rel(names))


@register_format("state_dict", (".pt", ".pth", ".bin", ".ckpt"), _is_torch_save,
                 "a torch.save state dict (weights_only) + a built-in architecture from PATH.json or --model-meta")
def _load_state_dict(req: LoadRequest):
    state = torch_state_dict(req.path)
    return _build_arch(_arch_meta(req), req, state, req.path.name)


def parse_code(code: str) -> tuple[Path, str]:
    file, sep, cls = str(code).rpartition(":")
    if not sep or not file.endswith(".py") or not cls.isidentifier():
        raise ModelFileError(f"--model-code must look like FILE.py:ClassName, got {code!r}")
    return Path(file), cls


def _never(head: bytes, names) -> bool:
    return False


@register_format("code", (), _never,
                 "--model-code FILE.py:ClassName --weights W (.safetensors or a .pt state dict); runs your code")
def _load_code(req: LoadRequest):
    file, cls_name = parse_code(req.code)
    if not file.is_file():
        raise ModelFileError(f"model code file not found: {file}")
    if req.path is None:
        raise ModelFileError(f"--model-code {req.code} needs --weights W.safetensors (or a .pt state dict)")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    mod_name = f"xai_user_model_{re.sub(r'[^0-9a-zA-Z_]', '_', file.stem)}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(mod_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001
            sys.modules.pop(mod_name, None)
            raise ModelFileError(f"importing {file.name} failed: {type(e).__name__}: {e}") from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        found = [k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
                 and v.__module__ == mod_name]
        raise ModelFileError(f"{file.name} has no nn.Module class '{cls_name}'; its classes: "
                             f"{', '.join(found) or 'none'}")
    try:
        model = cls(**(req.model_args or {}))
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{cls_name}(**{req.model_args or {}}) failed: {type(e).__name__}: {e} "
                             f"(pass constructor arguments with --model-arg KEY=VALUE)") from None
    w = Path(req.path)
    if not w.is_file():
        raise ModelFileError(f"weights file not found: {w}")
    if _is_safetensors(w.read_bytes()[:64], None) or w.suffix == ".safetensors":
        try:
            state = st_load(str(w), device="cpu")
        except Exception as e:  # noqa: BLE001
            raise ModelFileError(f"{w.name} is not a readable safetensors file ({e})") from None
    else:
        state = torch_state_dict(w)
    _strict_load(model, state, f"{cls_name}(**{req.model_args or {}})", w.name)
    return model, {"class_name": cls_name, "code": str(file), "model_args": req.model_args or {}}
