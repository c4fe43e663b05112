"""The cost guard shared by the command line and the dashboard: how many model passes a run may take before
the user must confirm it (``--yes`` on the command line, a confirmation in the dashboard); and the time a run
takes, from the model's per-pass cost measured on this machine (``pass_cost``: one forward and one forward +
backward pass on a small batch, cached per model hash and device), so that a cost reads "about 40 s (216
forward and 207 backward passes)"."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

COST_LIMIT = 5e7  # forward + backward passes


def needs_confirmation(passes: float) -> bool:
    """True when a run's estimated forward + backward passes exceed ``COST_LIMIT``."""
    return float(passes) > COST_LIMIT


@dataclass(frozen=True)
class PassCost:
    """Measured seconds per sample of one forward pass and of the backward part of a forward + backward pass.

    ``forward_s`` is the time of a forward pass without gradients divided by the batch size; ``backward_s`` the
    extra time a backward pass adds (forward + backward minus forward), per sample. A cost estimate of F forward
    and B backward passes (every backward pass also counted among the forward ones) then takes about
    ``F * forward_s + B * backward_s`` seconds (:func:`seconds`).
    """
    forward_s: float
    backward_s: float
    batch: int = 0  # the batch size it was measured on
    device: str = ""


def seconds(forward: float, backward: float, per_pass: PassCost) -> float:
    """Estimated seconds of ``forward`` forward and ``backward`` backward passes at the measured per-pass cost.

    Parameters
    ----------
    forward, backward : float
        Passes, counted per input (as the cost estimates count them).
    per_pass : PassCost
        The measured cost of one pass per sample.

    Returns
    -------
    float
    """
    return float(forward) * per_pass.forward_s + float(backward) * per_pass.backward_s


def format_seconds(s: float) -> str:
    """A duration for a person: "about 40 s", "about 3 min", "about 2.5 h", "under 1 s".

    Parameters
    ----------
    s : float
        Seconds.

    Returns
    -------
    str
    """
    if not math.isfinite(s):
        return "an unknown time"
    if s < 1:
        return "under 1 s"
    if s < 90:
        return f"about {s:.0f} s"
    if s < 90 * 60:
        return f"about {s / 60:.0f} min"
    return f"about {s / 3600:.1f} h"


def describe(forward: float, backward: float, per_pass: PassCost | None = None) -> str:
    """The cost for a person: "about 40 s (216 forward and 207 backward passes)"; the passes alone without a
    measured per-pass cost.

    Parameters
    ----------
    forward, backward : float
        Passes, counted per input.
    per_pass : PassCost, optional
        The measured cost of one pass (``pass_cost``).

    Returns
    -------
    str
    """
    passes = f"{forward:,.0f} forward and {backward:,.0f} backward passes"
    if per_pass is None:
        return passes
    return f"{format_seconds(seconds(forward, backward, per_pass))} ({passes})"


def measure(model, x, repeats: int = 3) -> PassCost:
    """Time one forward and one forward + backward pass of ``model`` on the batch ``x`` (best of ``repeats``).

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    x : torch.Tensor
        A small batch of real inputs, on that device.
    repeats : int
        Timings taken of each; the fastest counts (one warm-up run first).

    Returns
    -------
    PassCost
    """
    import torch  # noqa: PLC0415 - torch: costs.py is read at the CLI's start-up, the timing only when asked

    def sync():
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    def fwd():
        with torch.no_grad():
            model(x)

    def fwd_bwd():
        xi = x.detach().clone().requires_grad_(True)
        model(xi).sum().backward()

    def best(fn) -> float:
        fn()
        sync()
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return min(times)

    was_training = model.training
    model.eval()
    try:
        f = best(fwd)
        fb = best(fwd_bwd)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    n = max(1, len(x))
    return PassCost(forward_s=f / n, backward_s=max(fb - f, 0.0) / n, batch=n, device=str(x.device))


def pass_cost(model, x, key: str, path: str | Path) -> PassCost:
    """The per-pass cost of ``model`` on this machine, measured once per ``key`` and kept in the JSON file ``path``.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on its device.
    x : torch.Tensor
        A small batch of real inputs on that device (measured only when ``key`` is not in the file).
    key : str
        What the cost depends on, e.g. ``"<model hash>:<device>:<threads>"``.
    path : str or Path
        The JSON file of measured costs (one object: key -> PassCost fields); a damaged file is rewritten.

    Returns
    -------
    PassCost
    """
    path = Path(path)
    known: dict = {}
    try:
        known = json.loads(path.read_text())
        if not isinstance(known, dict):
            known = {}
        hit = known.get(key)
        if isinstance(hit, dict):
            return PassCost(**hit)
    except (OSError, ValueError, TypeError):
        pass
    cost = measure(model, x)
    known[key] = asdict(cost)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: the cost is measured again next time
    return cost


def model_pass_cost(model, inputs, model_hash: str, cache: str | Path, batch: int = 32) -> PassCost:
    """``pass_cost`` of a model on up to ``batch`` of ``inputs``, kept in ``cache/pass_costs.json`` under its
    hash, device, torch thread count and batch size (re-measured when any of them changes or the file is gone).

    Parameters
    ----------
    model : torch.nn.Module
        The model, on its device.
    inputs : array-like
        Real samples of its dataset (e.g. ``ds.X[ds.test_idx]``); the first ``batch`` are timed.
    model_hash : str
        The checkpoint hash.
    cache : str or Path
        The cache folder (``xai_core.data.cache_dir()``).
    batch : int
        Samples timed at once.

    Returns
    -------
    PassCost
    """
    import torch  # noqa: PLC0415 - torch: costs.py is read at the CLI's start-up, the timing only when asked

    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    key = f"{model_hash}:{device}:{torch.get_num_threads()}:{batch}"
    x = torch.as_tensor(inputs[:batch], device=device)
    if param is not None and x.is_floating_point():
        x = x.to(param.dtype)
    return pass_cost(model, x, key, Path(cache) / "pass_costs.json")
