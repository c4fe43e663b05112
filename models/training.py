"""Seeded training with early stopping on a validation split carved from the training set.

The recorded test metric is AUROC for binary tasks and accuracy otherwise (both are reported).
Recipe option ``regularizer`` (default ``"standard"``, the plain loss) picks a training-time regulariser of
``xai_core.models.regularizers`` (Gaussian input noise, mixup, adversarial training, ...), ``regularizer_params`` its
options; both are part of the recipe recorded in the report and the checkpoint metadata.
Recipe option ``augment`` (default ``"none"``) picks a data augmentation of ``AUGMENTS`` applied to every training
batch: ``"reverse_complement"`` trains one-hot DNA (sequence data, channels ACGT) on each sequence and its reverse
complement, a symmetry of data whose motifs occur on either strand. It is a recipe option, not a regulariser, so
the DNA consistency study's population of regularisers is unchanged.
Recipe option ``dtype`` (default ``"float32"``) is the precision of training: ``"float64"`` creates the model in
float64 (its initial weights drawn in float64, so they differ from the float32 recipe's), trains it on float64
inputs and computes the validation scores in float64. Float32 kernels round differently with the thread count and
the CPU's instruction set (AVX2 or AVX-512, oneDNN's blockings, even torch's uniform draws of the initial weights),
and a few epochs of Adam, or FGSM's gradient signs, amplify those last bits into other weights; in float64 the same
differences stay far below float32's resolution, so the same recipe trains the same model on another machine
(docs/determinism.md). Either way the model returned, and saved, is float32: the weights of the best validation
epoch rounded to float32, the precision every explainer, metric, store and model file of the tool works in. The test
metrics are those of the float32 weights, computed in the training dtype.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from torch import nn
from torch.overrides import TorchFunctionMode

from xai_core.errors import NotApplicable
from xai_core.progress import ProgressFn, notify
from xai_core.provenance import now, package_versions

from . import resume as resume_state
from .architectures import ARCHS, build_model
from .recipe import OPTIONAL_RECIPE, check_augment, check_recipe, training_dtype
from .recipe import (AUGMENTS, DEFAULT_DTYPE, DTYPES, Augment,  # noqa: F401 - the recipe's names, still importable
                     reverse_complement, with_reverse_complement)  # (from here, where they used to live)
from .regularizers import get_regularizer, make_loss, soft_targets

# the factory functions a model's constructor makes its parameters and buffers with (torch.nn's layers use these)
_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.eye, torch.linspace})


class CreatedIn(TorchFunctionMode):
    """``with CreatedIn(torch.float64): build_model(...)``: within the block, on this thread only, tensors made by
    torch's factory functions (``empty``, ``zeros``, ``ones``, ``rand``, ``randn``, ...) without a dtype are made
    in ``dtype``, so a model built inside it has its parameters created, and its initial weights drawn, in it.

    Why not build in float32 and widen: torch's uniform draws round differently under other CPU kernels (ATen's
    AVX2 and default kernels differ by one unit in the last place in about half the weights), and a float32 unit
    is large enough for Adam and FGSM's gradient signs to turn it into other weights. A float64 unit is not.
    ``torch.set_default_dtype`` would do the same for every thread of the process; a torch function mode is
    thread-local.

    Parameters
    ----------
    dtype : torch.dtype
        The floating-point dtype of the tensors created.
    """

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and kwargs.get("dtype") is None:
            kwargs["dtype"] = self.dtype
        return func(*args, **kwargs)


@dataclass
class TrainReport:
    """What ``train_model`` reports: the best validation epoch and its test metrics.

    Attributes
    ----------
    arch : str
        The architecture's name.
    metric_name : str
        ``"auroc"`` for binary tasks, ``"accuracy"`` otherwise.
    metric_value : float
        The test value of ``metric_name``.
    test_accuracy, test_balanced_accuracy : float
        Test accuracy and balanced accuracy.
    test_auroc : float or None
        Test AUROC (binary tasks only).
    epochs_run : int
        Epochs trained before the end or early stopping.
    best_epoch : int
        The epoch whose weights were kept (best validation score).
    seconds : float
        Training time.
    seed : int
        The training seed.
    recipe : dict
        The training recipe used (``check_recipe``), regulariser included.
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_score``.
    """
    arch: str
    metric_name: str
    metric_value: float
    test_accuracy: float
    test_balanced_accuracy: float
    test_auroc: float | None
    epochs_run: int
    best_epoch: int
    seconds: float
    seed: int
    recipe: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict (recorded in checkpoint metadata).

        Returns
        -------
        dict
        """
        return asdict(self)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a model computes in: float64 when its first floating-point parameter is, else float32.

    Parameters
    ----------
    model : nn.Module
        The model.

    Returns
    -------
    torch.dtype
        ``torch.float64`` or ``torch.float32`` (also for a model without parameters, or in half precision).
    """
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    return torch.float64 if first is not None and first.dtype == torch.float64 else torch.float32


@torch.no_grad()
def predict_proba(model: nn.Module, X: np.ndarray | torch.Tensor, batch_size: int = 512,
                  device: str = "cpu") -> np.ndarray:
    """Class probabilities (N, C); single-logit binary models give [1 - sigmoid, sigmoid].

    Parameters
    ----------
    model : nn.Module
        The model (put in eval mode).
    X : ndarray or Tensor or SparseRows
        Inputs; a lazy sparse matrix is densified one batch at a time. They are cast to the model's dtype
        (``model_dtype``): float32, or float64 for a model being trained in float64.
    batch_size : int
        Inputs per forward pass.
    device : str
        Where ``model`` is.

    Returns
    -------
    ndarray
        (N, C) probabilities (float64 for a float64 model, float32 otherwise).
    """
    model.eval()
    dtype = model_dtype(model)
    lazy = not isinstance(X, (np.ndarray, torch.Tensor))  # a SparseRows: densify one batch at a time
    if not lazy:
        X = torch.as_tensor(X, dtype=dtype)
    out = []
    for i in range(0, len(X), batch_size):
        xb = torch.as_tensor(X[i:i + batch_size]).to(dtype) if lazy else X[i:i + batch_size]
        z = model(xb.to(device))
        z = z.double() if dtype == torch.float64 else z.float()
        p = torch.sigmoid(z) if z.shape[1] == 1 else torch.softmax(z, dim=1)
        out.append(torch.cat([1 - p, p], dim=1) if z.shape[1] == 1 else p)
    return torch.cat(out).cpu().numpy()


def evaluate_model(model: nn.Module, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> dict[str, float | None]:
    """Test metrics of ``model`` on ``X``, ``y``.

    Parameters
    ----------
    model : nn.Module
        The model.
    X : ndarray
        Inputs.
    y : ndarray
        Class indices.
    device : str
        Where ``model`` is.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, and ``auroc`` (None unless the task is binary with both classes
        present).
    """
    proba = predict_proba(model, X, device=device)
    pred = proba.argmax(1)
    auroc = None
    if proba.shape[1] == 2 and len(np.unique(y)) == 2:
        auroc = float(roc_auc_score(y, proba[:, 1]))
    return {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auroc": auroc}


def _split_validation(ds, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_valid = int(ds.params.get("n_valid", 0))
    if n_valid:  # the dataset brings its own validation block at the end of train_idx
        return ds.train_idx[:-n_valid], ds.train_idx[-n_valid:]
    rng = np.random.default_rng(seed)
    idx = rng.permutation(ds.train_idx)
    n_val = max(1, int(round(val_fraction * len(idx))))
    return idx[n_val:], idx[:n_val]


class _LazyRows:
    """Rows ``idx`` of a lazy matrix, indexed like a tensor: ``rows[b]`` densifies only the rows ``b``."""

    def __init__(self, X, idx: np.ndarray):
        self.X, self.idx = X, np.asarray(idx)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, b) -> torch.Tensor:
        b = b.numpy() if isinstance(b, torch.Tensor) else b
        return torch.as_tensor(self.X[self.idx[b]])


_BURN_IN_OFF = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = float(lr)


def train_model(ds, arch: str, seed: int = 0, device: str = "cpu", val_fraction: float = 0.1,
                progress: ProgressFn | None = None, arch_kwargs: dict | None = None,
                resume: str | Path | None = None, **recipe_overrides: Any) -> tuple[nn.Module, TrainReport]:
    """Train ``arch`` on ``ds``; keep the weights of the best validation epoch; report test metrics.

    The validation split is carved from the training set (or the dataset's own validation block); training
    stops early after ``patience`` epochs without improvement (the recipe's).

    Parameters
    ----------
    ds : Dataset
        The training data.
    arch : str
        The architecture's name (``ARCHS``), of the dataset's modality.
    seed : int
        Seeds torch, numpy, the validation split and the batch order.
    device : str
        Where to train.
    val_fraction : float
        The share of training samples held out for validation.
    progress : ProgressFn, optional
        Gets ``Progress(epoch, total_epochs, "train", stats={"train_loss", "val_score", ...})`` after every epoch
        (the CLI's progress bar, ``epoch_bar``).
    arch_kwargs : dict, optional
        Architecture options (``build_model``).
    resume : path, optional
        Where the run's state is saved after every epoch (``models.resume``): started again with the same path, an
        interrupted run continues after its last finished epoch and ends with the same weights. Not part of the
        recipe.
    **recipe_overrides
        Training-recipe options over the architecture's defaults (``check_recipe``).

    Returns
    -------
    tuple of (nn.Module, TrainReport)
        The model in eval mode with the best epoch's weights (float32, rounded from float64 when the recipe's
        ``dtype`` is ``"float64"``), and the report (test metrics of those weights, computed in the training
        dtype).

    Raises
    ------
    NotApplicable
        When the architecture is for another modality.
    XaiError
        For an unknown recipe option or a value out of range (``check_recipe``).
    """
    spec = ARCHS.get(arch)
    if spec.modality != ds.modality:
        valid = [a.name for a in ARCHS.values() if a.modality == ds.modality]
        raise NotApplicable(f"model '{arch}' is for {spec.modality} data, '{ds.name}' is {ds.modality}; "
                            f"valid choices: {', '.join(valid)}")

    recipe = check_recipe(arch, recipe_overrides, flag="training option")
    augment = check_augment(recipe["augment"], ds)
    dtype = training_dtype(recipe, device)
    regularize = get_regularizer(recipe["regularizer"], recipe["regularizer_params"])
    plain = recipe["regularizer"] == "standard"
    torch.manual_seed(seed)
    np.random.seed(seed)
    if dtype == torch.float32:  # the original path, bit for bit
        model = build_model(arch, ds.input_shape, ds.n_classes, **(arch_kwargs or {})).to(device)
    else:  # created and initialised in float64 (its own initial weights, the same on every CPU: CreatedIn)
        with CreatedIn(dtype):
            model = build_model(arch, ds.input_shape, ds.n_classes, **(arch_kwargs or {}))
        model = model.to(device=device, dtype=dtype)
    single = model(torch.zeros((2, *ds.input_shape), device=device, dtype=dtype)).shape[1] == 1
    tr_idx, va_idx = _split_validation(ds, val_fraction, seed)
    lazy = not isinstance(ds.X, np.ndarray)  # a large sparse matrix: densify each mini-batch, not the set
    Xtr = _LazyRows(ds.X, tr_idx) if lazy else torch.as_tensor(ds.X[tr_idx]).to(dtype)
    ytr = torch.as_tensor(ds.y[tr_idx])
    if recipe["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"],
                              weight_decay=recipe["weight_decay"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    sched = (torch.optim.lr_scheduler.MultiStepLR(opt, list(recipe["milestones"]), gamma=0.1)
             if recipe.get("milestones") else None)
    loss_fn = nn.BCEWithLogitsLoss() if single else nn.CrossEntropyLoss()
    n_out = 1 if single else ds.n_classes
    soft_loss = make_loss(n_out)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, bad, history = -np.inf, None, 0, 0, []
    burn = int(recipe.get("burn_in_epochs", 0))
    reg_from = int(recipe.get("regularizer_from_epoch", 1))
    # with a clean plateau, the regulariser waits until the plain loss stops improving the validation score
    plateau = int(recipe.get("clean_plateau_patience", 0))
    clean, limit = plateau > 0, recipe["epochs"]
    started = plain or (reg_from <= 1 and not clean)  # whether a regularised epoch has begun (or none ever will)
    if burn:
        _set_lr(opt, recipe.get("burn_in_lr", OPTIONAL_RECIPE["burn_in_lr"]))
    t0, spent, epoch = time.perf_counter(), 0.0, 0
    ident = resume_state.identity(ds, arch, arch_kwargs, seed, recipe, val_fraction, device) if resume else ""
    saved = resume_state.load(resume, ident) if resume else None
    if saved is not None:
        loop = resume_state.restore(saved, model, opt, sched, gen)
        best, best_state, best_epoch, bad, history = (loop[k] for k in ("best", "best_state", "best_epoch", "bad",
                                                                           "history"))
        epoch, limit, clean, started, spent = (loop[k] for k in ("epoch", "limit", "clean", "started", "seconds"))
    while epoch < limit:
        epoch += 1
        model.train()
        if epoch <= burn:  # burn-in: BatchNorm (running statistics) and dropout off
            for m in model.modules():
                if isinstance(m, _BURN_IN_OFF):
                    m.eval()
        elif burn and epoch == burn + 1:
            _set_lr(opt, recipe["lr"])
        if not started and not clean and epoch >= reg_from:  # the first regularised epoch: the weights kept are
            started, best, bad = True, -np.inf, 0              # the best regularised ones, not the clean phase's
        perm = torch.randperm(len(Xtr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), recipe["batch_size"]):
            b = perm[i:i + recipe["batch_size"]]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            xb, yb = Xtr[b].to(device=device, dtype=dtype), ytr[b].to(device)
            if augment is not None:
                xb, yb = augment(xb, yb)
            if plain or clean or epoch < reg_from:  # the original path, bit for bit
                z = model(xb)
                loss = loss_fn(z[:, 0], yb.to(dtype)) if single else loss_fn(z, yb)
            else:
                loss = regularize(model, xb, soft_targets(yb, n_out).to(dtype), soft_loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        if sched:
            sched.step()
        val = evaluate_model(model, _LazyRows(ds.X, va_idx) if lazy else ds.X[va_idx], ds.y[va_idx], device)
        score = val["auroc"] if val["auroc"] is not None else val["balanced_accuracy"]
        history.append({"epoch": epoch, "train_loss": total / len(Xtr), "val_score": score})
        if plateau:
            history[-1]["regularized"] = not clean
        notify(progress, epoch, limit, "train", f"epoch {epoch}/{limit}", stats=history[-1])
        if score > best + 1e-6:
            best, best_state, best_epoch, bad = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            bad += 1
        if clean and (bad >= plateau or epoch >= limit):  # the regularised phase starts from the clean best
            model.load_state_dict(best_state)
            clean, limit, best, bad = False, epoch + recipe["epochs"], -np.inf, 0
        elif bad >= recipe["patience"]:
            break
        if resume:
            resume_state.save(resume, ident, model, opt, sched, gen, {
                "best": best, "best_state": best_state, "best_epoch": best_epoch, "bad": bad, "history": history,
                "epoch": epoch, "limit": limit, "clean": clean, "started": started,
                "seconds": spent + time.perf_counter() - t0})
    model.load_state_dict(best_state)
    model.eval()
    if dtype != torch.float32:  # the model the tool uses is float32; its test metrics in the training dtype
        model = model.float()
        scored = copy.deepcopy(model).to(dtype)
    else:
        scored = model
    test = evaluate_model(scored, _LazyRows(ds.X, ds.test_idx) if lazy else ds.X[ds.test_idx], ds.y[ds.test_idx],
                          device)
    binary = test["auroc"] is not None
    report = TrainReport(arch=arch, metric_name="auroc" if binary else "accuracy",
                         metric_value=test["auroc"] if binary else test["accuracy"],
                         test_accuracy=test["accuracy"], test_balanced_accuracy=test["balanced_accuracy"],
                         test_auroc=test["auroc"], epochs_run=epoch, best_epoch=best_epoch,
                         seconds=spent + time.perf_counter() - t0, seed=seed, recipe=recipe, history=history)
    return model, report


def checkpoint_meta(ds, arch: str, arch_kwargs: dict | None, report: TrainReport) -> dict[str, Any]:
    """Everything a checkpoint records: how to rebuild the model, on what it was trained, how well it did."""
    return {"arch": arch, "arch_kwargs": arch_kwargs or {}, "input_shape": list(ds.input_shape),
            "n_classes": ds.n_classes, "dataset": ds.name, "dataset_fingerprint": ds.fingerprint(),
            "class_names": ds.class_names, "created": now(), "versions": package_versions(),
            "regularizer": report.recipe.get("regularizer", "standard"), **report.to_dict()}
