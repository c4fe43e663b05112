"""The analysis of the dna-consistency study (§3.8-3.9): correlations of the divergences with SNR, the pair of
models with near-equal accuracy and different interpretability, the Pareto front and the selected model, the
claims, tables and figures. ``dna_consistency`` trains and scores the population."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from ..data.dna import to_strings
from ..selection import pareto_front, select_model
from .base import StudyContext

PAPER_R = {"kmer_kld": (0.6177, 8.6e-36), "spherical_kld": (0.8747, 3.1e-104)}
PAPER_N_MODELS = 327
PAPER_SPAN = 1.7  # pp of test AUROC the paper's population spans (97.0-98.7 %)
TARGET_AUROC = 96.0  # % test AUROC every member of the paper-scale population should reach
SEED_SENSITIVE_SD = 0.1  # sd of r over the seeds' populations from which the summary calls r seed-sensitive
PAPER_PAIR = [("/fixedlr/nobn/relu/gn/saliency/12", 0.98590, 0.568, 0.127, 0.138),
              ("/fixedlr/bn/exponential/manifold-mixup/saliency/2", 0.98666, 4.143, 1.412, 0.869)]
KLDS = ("kmer_kld", "spherical_kld")
# the settings of the population's training regularisers: ``dna_consistency`` trains with them, the
# protocol records them
REG_PARAMS: dict[str, dict[str, Any]] = {"gn": {"sigma": 0.15}, "manifold-gn": {"sigma": 0.15},
                                         "mixup": {"alpha": 1.0}, "manifold-mixup": {"alpha": 1.0},
                                         "adversarial": {"epsilon": 0.05, "steps": 1}}
LABEL = {"kmer_kld": "KLD1 (k-mer)", "spherical_kld": "KLD2 (spherical)", "motif_snr": "SNR",
         "auroc": "test AUROC (%)"}


def differences(cfg: dict[str, Any], n: int, n_seq: int, n_pos: int | None = None, span: float | None = None
                ) -> list[str]:
    """How this run's population and recipe differ from the paper's (§3.3), from its settings. ``n_pos``: the
    positive test sequences there are (all of them scored: no difference); ``span``: the population's range of
    test AUROC in pp (the paper's spans 1.7)."""
    out = []
    paper_schedule = (cfg["epochs"] >= 100 and cfg.get("patience") == 10 and cfg.get("burn_in_epochs") == 2
                      and cfg["lr"] == 1e-2)
    if not paper_schedule:
        out.append(f"{n} models instead of 327; {cfg['epochs']} epochs (lr {cfg['lr']}) instead of 100 with "
                   "burn-in, lr 1e-2 and patience 10, for the CPU budget")
    elif n < 327:
        out.append(f"{n} models instead of 327 (the paper's recipe: up to {cfg['epochs']} epochs after a "
                   f"{cfg['burn_in_epochs']}-epoch burn-in, lr {cfg['lr']}, patience {cfg['patience']})")
    pgd = cfg.get("adversarial_steps", 1) >= 10 and cfg.get("clean_epochs", 0) >= 5
    if "adversarial" in cfg["regularizers"] and not pgd:
        out.append("adversarial training: FGSM (1 step, eps 0.05, 50/50 with the clean loss) from the first "
                   "epoch, not 10-step PGD after 5 clean epochs")
    missing = [name for reg, name in (("sn", "spectral-norm"), ("manifold-gn", "manifold-gn"))
               if reg not in cfg["regularizers"]]
    if missing:
        out.append(" and ".join(missing) + " members not trained")
    if n_pos is None or n_seq < n_pos:
        out.append(f"{n_seq} positive test sequences scored instead of all "
                   + (f"{n_pos:,}" if n_pos is not None else "(~2,000)"))
    if cfg.get("burn_in_epochs") and cfg.get("lr_nobn"):  # the paper's schedule, but a slower rate without BN
        out.append(f"members without BatchNorm stay at lr {cfg['lr_nobn']} after the burn-in: at {cfg['lr']} the "
                   "exponential ones collapse to chance in the first epoch and never recover, and so did 3 of the "
                   "first 4 ReLU ones (docs/studies/RUNS.md)")
    elif cfg.get("burn_in_epochs") and "lr_exp_nobn" in cfg:  # the paper's schedule, but a slower rate for them
        out.append(f"exponential members without BatchNorm stay at lr {cfg['lr_exp_nobn']} after the burn-in: at "
                   f"{cfg['lr']} they collapse to chance in the first epoch and never recover (docs/studies/RUNS.md)")
    elif "lr_exp_nobn" in cfg or not cfg.get("burn_in_epochs"):  # the CPU recipes' slower rate for them
        out.append(f"exponential members without BatchNorm trained at lr {cfg.get('lr_exp_nobn', cfg['lr'])} "
                   "(they diverge at 2e-3) and stay far less accurate in this budget")
    if cfg.get("burn_in_epochs") and cfg.get("sn_from_epoch_nobn") and "sn" in cfg["regularizers"]:
        out.append(f"the spectral-norm penalty of members without BatchNorm starts at epoch "
                   f"{cfg['sn_from_epoch_nobn']}, after the burn-in: from the first epoch it shrinks every layer until "
                   "the network is dead in epoch 2 (docs/studies/RUNS.md)")
    if cfg.get("burn_in_epochs") and cfg.get("pgd_clean_plateau_nobn") and "adversarial" in cfg["regularizers"]:
        out.append(f"PGD members without BatchNorm train clean until validation AUROC has not improved for "
                   f"{cfg['pgd_clean_plateau_nobn']} epochs, then adversarially from the clean best (with up to "
                   f"{cfg['epochs']} more epochs and early stopping of their own): after 5 clean epochs at lr "
                   f"{cfg.get('lr_nobn', cfg['lr'])} they are far from converged and PGD holds them at chance loss "
                   "(docs/studies/RUNS.md)")
    if span is None or span > 2 * PAPER_SPAN:
        out.append(f"the paper's population spans {PAPER_SPAN} pp of test AUROC, ours "
                   + (f"{span:.1f} pp" if span is not None else "much more")
                   + ": correlations are also reported for the models near the best accuracy")
    return out


def pearson(x, y) -> tuple[float, float]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan"), float("nan")
    r, p = pearsonr(x[ok], y[ok])
    return float(r), float(p)


def choose_pair(df: pd.DataFrame, tolerances=(0.5, 1.0, 2.0, 5.0, 100.0)) -> tuple[int, int, float]:
    """(low, high): among pairs whose test AUROC differ by at most the first tolerance (pp) that admits one,
    the pair with the largest SNR difference; low has the lower SNR."""
    a, s = df["auroc"].to_numpy(float), df["motif_snr"].to_numpy(float)
    d_acc = np.abs(a[:, None] - a[None, :])
    d_snr = np.abs(s[:, None] - s[None, :])
    for tol in tolerances:
        ok = (d_acc <= tol) & np.isfinite(d_snr) & ~np.eye(len(a), dtype=bool)
        if ok.any():
            i, j = np.unravel_index(np.where(ok, d_snr, -1).argmax(), ok.shape)
            return (int(i), int(j), tol) if s[i] <= s[j] else (int(j), int(i), tol)
    raise ValueError("need at least two models with an SNR")


def _r_verdict(r: float, p: float, paper: float) -> str:
    if not np.isfinite(r) or r <= 0:
        return "differs"
    if p < 0.05 and abs(r - paper) <= 0.15:
        return "agrees"
    return "partly" if p < 0.05 or abs(r - paper) <= 0.3 else "differs"


# -- analysis ------------------------------------------------------------------------------------------------
def _ic(pwm: np.ndarray) -> np.ndarray:
    """(4, L) PWM -> information content per position (bits), as §3.5."""
    return 2.0 + (pwm * np.log2(pwm + 1e-10)).sum(0)


def _logos(ds, df, lo: int, hi: int, idx, per_sample, maps, width: int = 80) -> dict[str, Any]:
    """The kept sequence where the pair's SNR differs most; gradient-corrected saliency (L, 4) of both models
    and the planted motifs' information, cropped to the ``width`` bp window richest in motif information."""
    keep = len(maps[lo])
    ids = [ds.sample_ids[i] for i in idx[:keep]]
    gap = [per_sample[hi]["motif_snr"].get(s, np.nan) - per_sample[lo]["motif_snr"].get(s, np.nan) for s in ids]
    j = int(np.nanargmax(gap)) if np.isfinite(gap).any() else 0
    ic = _ic(np.asarray(ds.ground_truth.pwm[idx[j]], dtype=float))
    w = min(width, len(ic))
    start = int(np.argmax(np.convolve(ic, np.ones(w), mode="valid")))
    cut = slice(start, start + w)
    out = {}
    for k in (lo, hi):
        a = maps[k][j] - maps[k][j].mean(0, keepdims=True)
        r = df.iloc[k]
        out[f"{r['member']} (AUROC {r['auroc']:.2f} %, SNR {r['motif_snr']:.2f})"] = np.round(a[:, cut].T, 5)
    return {"sequence": to_strings(ds.X[idx[j]])[0][cut], "pwm_ic": np.round(ic[cut], 4), "maps": out,
            "start": start, "sample": ids[j], "y_title": "saliency (gradient-corrected)"}


# the precision of training (recipe option dtype) in words: the protocol's entry, and what it means for the
# population table's numbers on another machine (docs/determinism.md)
PRECISION = {
    "float64": "float64 (weights rounded to float32 for scoring): float32 training amplifies the last-bit "
               "differences of other CPU kernels and thread counts into other weights; in float64 the same "
               "command trains the same models on another machine",
    "float32": "float32 (float64 took 1.5 times the CPU time on the quick population; --set dtype=float64 "
               "makes the training machine-independent)",
}
MACHINE_NOTE = {
    "float64": "Trained in float64: another CPU or thread count trains the same models (docs/determinism.md); the "
               "spread over training seeds below is the population's own.",
    "float32": "Every number here passes through training: a CPU with another instruction set trains other weights "
               "(docs/determinism.md); the spread over seeds below says how much that matters.",
}


@dataclass(frozen=True)
class _Correlations:
    """Pearson r and p of each divergence column with SNR, for the whole population ("all") and ``near_pop``."""

    rs: dict[tuple[str, str], tuple[float, float]]  # (population, column) -> (r, p)
    near: pd.DataFrame                              # the models within ``window`` pp of the best test AUROC
    window: float
    near_pop: str                                   # the name of that population
    spread: dict[str, tuple[list[float], float]]     # column -> (r within each seed's population, their sd)


def seed_spread_sentence(spread: dict[str, tuple[list[float], float]]) -> str:
    """How r varies between the training seeds' populations (" Within one ..."), empty with a single seed; called
    seed-sensitive only from an sd of ``SEED_SENSITIVE_SD``."""
    if not {"kmer_kld", "spherical_kld"} <= set(spread):
        return ""
    sd1, sd2 = spread["kmer_kld"][1], spread["spherical_kld"][1]
    return (f" Within one training seed's population alone r varies by sd {sd1:.2f} (KLD1) and {sd2:.2f} (KLD2) from "
            "seed to seed: " + ("these correlations are seed-sensitive." if max(sd1, sd2) >= SEED_SENSITIVE_SD
                                else "they hold seed by seed."))


@dataclass(frozen=True)
class _Pair:
    """The side-by-side pair: near-equal test AUROC, the largest SNR difference."""

    L: pd.Series  # the less interpretable model's row
    H: pd.Series  # the more interpretable one
    d_acc: float  # test AUROC difference (pp)
    snr_ratio: float


def analyse(ctx: StudyContext, ds, cfg, df: pd.DataFrame, idx, per_sample, maps,
            reference: dict[str, Any] | None = None) -> None:
    """Fill ``ctx.result`` from the scored population: protocol, correlations with SNR, the pair, the Pareto
    front and selection, then the claims and the summary (in that order, as the report lists them).
    ``reference``: the shipped checkpoint's row (scored with the same protocol), or None."""
    res, n, n_seq = ctx.result, len(df), len(idx)
    setup = (f"{n} models ({cfg['arch']}, {_schedule(cfg, df)}, {n_seq} positive test sequences scored) vs the "
             f"paper's {PAPER_N_MODELS} (up to 100 epochs with early stopping, ~2,000 sequences)")
    _protocol(res, ds, cfg, df, n_seq)
    if reference is not None:
        _reference(res, reference)
    corr = _correlations(res, df, cfg, setup)
    pair = _pair(res, ds, df, idx, per_sample, maps, setup)
    best_acc, gains = _pareto_and_selection(res, df, cfg, corr)
    _claims(res, ds, cfg, df, corr, pair, best_acc, gains)


def _at_target(df: pd.DataFrame) -> str:
    """How many members reach ``TARGET_AUROC``, naming those below (a few) or counting them."""
    low = df[df["auroc"] < TARGET_AUROC]
    out = f"{len(df) - len(low)} of {len(df)} at or above {TARGET_AUROC:g} %"
    if len(low):
        out += (" (below: " + ", ".join(f"{m} {a:.1f} %" for m, a in zip(low["member"], low["auroc"])) + ")"
                if len(low) <= 5 else f" ({len(low)} below, the lowest {low['auroc'].min():.1f} %)")
    return out


def _schedule(cfg: dict[str, Any], df: pd.DataFrame) -> str:
    """The training length as run: fixed epochs, or early stopping with the epochs the members actually ran."""
    runs = pd.to_numeric(df["epochs_run"], errors="coerce") if "epochs_run" in df else pd.Series(dtype=float)
    if cfg.get("patience", cfg["epochs"]) >= cfg["epochs"] or not runs.notna().any():
        return f"{cfg['epochs']} epochs"
    return (f"up to {cfg['epochs']} epochs with early stopping, {int(runs.min())}–{int(runs.max())} run")


def _protocol(res, ds, cfg, df: pd.DataFrame, n_seq: int) -> None:
    """The protocol as run (generator, population, training, scoring, differences) and the population table."""
    n = len(df)
    res.protocol = {
        "dataset": ds.name, "dataset_fingerprint": ds.fingerprint(),
        "generator": {k: ds.params.get(k) for k in ("n", "length", "seed", "jaspar_release", "core_motif_ids",
                                                     "n_train", "n_valid", "n_test")},
        "generator_check": "dna-motifs is the §3.2 generator: JASPAR 2016 CORE vertebrates (519 PFMs, via pyjaspar, "
                           "sorted by matrix id as the flat file), core SP1/GABPA/CEBPB/MAX/YY1 = MA0079.3/MA0062.2/"
                           "MA0466.2/MA0058.3/MA0095.2 and their reverse complements, the notebook's background "
                           "selection, RandomState(22), 20,000 x 200, 70/10/20 split. Not verified bit for bit "
                           "against the original h5 file (not available); the file order of pyjaspar's motifs is "
                           "inferred." + (" This run used the 4,000-sequence version." if ds.params.get("n") != 20000
                                          else ""),
        "population": {k: cfg[k] for k in ("arch", "activations", "batchnorm", "regularizers", "seeds")},
        "training_time": f"{int(df['trained_now'].sum())} of {n} models trained in this run, the others "
                         f"reused from the cache; training the whole population took "
                         f"{df['train_seconds'].sum() / 60:.1f} min (sum over the checkpoints' records, "
                         f"{res.machine.get('cpus')} CPUs, {res.machine.get('torch_threads')} torch thread)",
        "training": {"optimizer": "adam", **{k: cfg[k] for k in ("epochs", "lr", "batch_size", "patience",
                                                                 "burn_in_epochs", "burn_in_lr", "adversarial_steps",
                                                                 "clean_epochs", "sn_from_epoch_nobn",
                                                                 "pgd_clean_plateau_nobn") if k in cfg},
                     "lr (exponential without BatchNorm)": cfg.get("lr_nobn") or cfg.get("lr_exp_nobn", cfg["lr"]),
                     # only where it differs from lr (the paper preset): the other presets' results keep their keys
                     **({"lr (ReLU without BatchNorm)": cfg["lr_nobn"]} if cfg.get("lr_nobn") else {}),
                     "early_stopping": "best validation AUROC epoch kept",
                     # as trained: the paper preset's adversarial_steps replaces the 1-step default
                     "regularizer_params": {**REG_PARAMS, **({"adversarial": {**REG_PARAMS["adversarial"],
                                                                              "steps": int(cfg["adversarial_steps"])}}
                                                             if "adversarial_steps" in cfg else {})},
                     "precision": PRECISION[cfg.get("dtype", "float32")]},
        "scoring": {"method": "saliency (gradient of the logit; the study used the sigmoid output, a per-sequence "
                              "scale that none of the metrics sees)", "sequences": n_seq,
                    "KLD1": "kmer_kld k=6, q=0.9, buffer 2, maps as stored (no gradient correction), as the paper "
                            "on synthetic data; corrected variant: gradient-corrected",
                    "KLD2": "spherical_kld radius_cutoff 0.99, as_coded=True (e2 without z, window range(-3,3)); "
                            "corrected variant: as_coded=False", "n_boot": cfg["n_boot"]},
        "differences": differences(cfg, n, n_seq, int((ds.y[ds.test_idx] == 1).sum()),
                                   float(df["auroc"].max() - df["auroc"].min())),
    }
    cols = ["member", "activation", "batchnorm", "regularizer", "seed", "auroc", "motif_auroc", "motif_aupr",
            "motif_snr", "kmer_kld", "spherical_kld", "kmer_kld_corrected", "spherical_kld_corrected", "best_epoch"]
    res.table("population", "Population: test AUROC (%), ground-truth interpretability, consistency", cols,
              df[cols].values.tolist(), note="KLD1/KLD2 with the paper's synthetic settings; *_corrected: "
              "gradient-corrected KLD1, KLD2 with the orthonormal projection. Motif metrics: mean over sequences. "
              + MACHINE_NOTE[cfg.get("dtype", "float32")])


def _reference(res, ref: dict[str, Any]) -> None:
    """The shipped checkpoint scored with the population's protocol: numbers that pass through no training."""
    cols = ["auroc", "motif_auroc", "motif_aupr", "motif_snr", *KLDS, *(f"{k}_corrected" for k in KLDS)]
    res.table("reference", "Reference: the shipped checkpoint scored with the same protocol",
              ["model", "test AUROC (%)", *cols[1:]], [[ref["member"], *(ref[c] for c in cols)]],
              note="Not a population member (trained longer, with its own recipe; docs/checkpoints.md). Its weights "
                   "are fixed, so these numbers depend on the scoring alone and reproduce on any machine.")


# -- correlations with SNR: the whole population, and the models near the best accuracy (the paper's 327
# span 1.7 pp of test AUROC; short training leaves some of ours far below, e.g. exponential without BN)
def _correlations(res, df: pd.DataFrame, cfg, setup: str) -> _Correlations:
    """Pearson r of each divergence (paper settings and corrected) with SNR, compared with the paper's."""
    window = float(cfg.get("accuracy_window", 5.0))
    near = df[df["auroc"] >= df["auroc"].max() - window]
    near_pop = f"within {window:g} pp of the best AUROC"
    corr_rows, rs = [], {}
    spread = _seed_spread(res, df)
    why = "smaller" if _schedule(cfg, df).startswith("up to") else "smaller, shorter-trained"
    for pop, d, grp in (("all", df, "correlation with SNR"),
                        (near_pop, near, "correlation with SNR, near-best models")):
        for kld in KLDS:
            for variant, col in (("paper settings", kld), ("corrected", f"{kld}_corrected")):
                r, p = pearson(d[col], d["motif_snr"])
                rs[(pop, col)] = (r, p)
                corr_rows.append([pop, LABEL[kld], variant, r, p, len(d), PAPER_R[kld][0], PAPER_R[kld][1]])
                note = "as coded (e2 without z)" if kld == "spherical_kld" and variant == "paper settings" \
                    else variant
                per_seed = spread.get(col) if pop == "all" else None
                res.compare(f"Pearson r, {LABEL[kld]} ({variant}) vs SNR", r, PAPER_R[kld][0],
                            ours_sd=per_seed[1] if per_seed else None,
                            verdict=_r_verdict(r, p, PAPER_R[kld][0]), group=grp,
                            explanation=f"p = {p:.2g}; {len(d)} of {setup}; {note}. "
                                        + (f"± is the spread (sd) of r over the training seeds, each seed's "
                                           f"population alone: {', '.join(f'{x:.2f}' for x in per_seed[0])}. "
                                           if per_seed else "")
                                        + f"A {why} population spans a different range of SNR and KLD, which "
                                          "changes r.")
    res.table("correlations", "Pearson correlation of each divergence with SNR across the population",
              ["population", "divergence", "variant", "r", "p", "models", "paper r", "paper p"], corr_rows,
              note=f"'within {window:g} pp': only the models whose test AUROC is within {window:g} percentage "
                   "points of the best one (the paper's population spans 1.7 pp).")
    return _Correlations(rs, near, window, near_pop, spread)


def _seed_spread(res, df: pd.DataFrame) -> dict[str, tuple[list[float], float]]:
    """Each divergence's Pearson r with SNR within each training seed's population alone, and their sd: how
    much one draw of the training seeds moves the number (a table; {} for a single seed)."""
    seeds = sorted(df["seed"].unique())
    if len(seeds) < 2:
        return {}
    cols = [c for k in KLDS for c in (k, f"{k}_corrected")]
    per = {c: [pearson(df.loc[df["seed"] == s, c], df.loc[df["seed"] == s, "motif_snr"])[0] for s in seeds]
           for c in cols}
    out = {c: (v, float(np.std(v, ddof=1))) for c, v in per.items() if np.isfinite(v).all()}
    res.table("correlations_by_seed", "Spread over training seeds: Pearson r with SNR within each seed's population",
              ["divergence", "variant", *(f"seed {s}" for s in seeds), "mean", "sd"],
              [[LABEL[c.removesuffix("_corrected")], "corrected" if c.endswith("_corrected") else "paper settings",
                *per[c], float(np.mean(per[c])), float(np.std(per[c], ddof=1))] for c in cols],
              note=f"{len(df) // len(seeds)} models per seed. The sd is the seed-to-seed spread of a correlation "
                   "over so few models: a difference between two runs smaller than it says nothing.")
    return out


# -- the side-by-side pair
def _pair(res, ds, df: pd.DataFrame, idx, per_sample, maps, setup: str) -> _Pair:
    """The pair of models with near-equal test AUROC and the largest SNR difference, beside the paper's."""
    lo, hi, tol = choose_pair(df)
    L, H = df.iloc[lo], df.iloc[hi]
    pair_cols = ["auroc", "motif_snr", "kmer_kld", "spherical_kld"]
    res.table("pair", "Near-equal accuracy, different interpretability: ours beside the paper's pair",
              ["model", "test AUROC (%)", "SNR", "KLD1", "KLD2"],
              [[f"ours: {L['member']}", *L[pair_cols]], [f"ours: {H['member']}", *H[pair_cols]]]
              + [[f"paper: {p[0]}", 100 * p[1], *p[2:]] for p in PAPER_PAIR],
              note=f"Chosen among pairs within {tol} pp of test AUROC: the largest SNR difference.")
    d_acc = abs(H["auroc"] - L["auroc"])

    def ratio(c: str) -> float:
        return H[c] / L[c] if L[c] > 0 else float("inf")

    snr_ratio = ratio("motif_snr")
    res.compare("pair: test AUROC difference", d_acc, 100 * (PAPER_PAIR[1][1] - PAPER_PAIR[0][1]), unit="pp",
                verdict="agrees" if d_acc <= 0.5 else "partly", group="pair",
                explanation=f"searched within {tol} pp; the paper's two models differ by 0.08 pp")
    res.compare("pair: SNR ratio (more / less interpretable)", snr_ratio, PAPER_PAIR[1][2] / PAPER_PAIR[0][2],
                verdict="agrees" if snr_ratio >= 2 else "partly" if snr_ratio >= 1.3 else "differs", group="pair",
                explanation=f"SNR {H['motif_snr']:.3g} vs {L['motif_snr']:.3g}; {setup}")
    for kld in KLDS:
        rt = ratio(kld)
        res.compare(f"pair: {LABEL[kld]} ratio", rt, PAPER_PAIR[1][3 + KLDS.index(kld)]
                    / PAPER_PAIR[0][3 + KLDS.index(kld)], group="pair",
                    verdict="agrees" if rt >= 1.3 else "partly" if rt > 1 else "differs",
                    explanation=f"{H[kld]:.3g} vs {L[kld]:.3g}: whether the more interpretable model is also "
                                "the more consistent one")
    res.figure("pair_logos", "Saliency of one positive test sequence: the pair side by side", "logos",
               _logos(ds, df, lo, hi, idx, per_sample, maps),
               caption=f"{L['member']} vs {H['member']} (test AUROC {L['auroc']:.2f} vs {H['auroc']:.2f} %); the "
                       "sequence is the one of the first scored ones where their SNR differs most; 80-bp window.")
    return _Pair(L, H, d_acc, snr_ratio)


# -- Pareto front and selection
def _pareto_and_selection(res, df: pd.DataFrame, cfg, corr: _Correlations) -> tuple[pd.Series, list]:
    """The Pareto front of test AUROC vs each divergence and the model it selects; returns (the most accurate
    model, [(divergence, selected model)])."""
    fam = [f"{'exp' if a == 'exponential' else a}-{'bn' if b else 'nobn'}" for a, b in zip(df["activation"],
                                                                                     df["batchnorm"])]
    best_acc = df.loc[df["auroc"].idxmax()]
    front_rows, gains, tol_sel = [], [], float(cfg.get("tolerance", 1.0))
    for kld in KLDS:
        front = pareto_front(df, "auroc", kld)
        sel = select_model(df, x="auroc", y=kld, tolerance=tol_sel)
        front_rows += [[LABEL[kld], r["member"], r["auroc"], r[kld], r["motif_snr"], r["member"] == sel["member"]]
                       for _, r in front.iterrows()]
        gains.append((kld, sel))
        res.figure(f"pareto_{kld}", f"Accuracy vs consistency ({LABEL[kld]}): Pareto front", "scatter",
                   {"x": df[kld].tolist(), "y": df["auroc"].tolist(), "label": df["member"].tolist(),
                    "group": fam,
                    "highlight": [sel["member"]], "x_title": LABEL[kld], "y_title": LABEL["auroc"],
                    "line": front[[kld, "auroc"]].values.tolist(), "line_name": "Pareto front"},
                   caption=f"Dashed: the Pareto front ({len(front)} models); highlighted: the selected model "
                           f"{sel['member']} (the most consistent front member within {tol_sel} pp of the best "
                           "AUROC).")
        r, p = corr.rs[("all", kld)]
        ok = np.isfinite(df[kld].to_numpy(float)) & np.isfinite(df["motif_snr"].to_numpy(float))
        fit = np.polyfit(df.loc[ok, kld], df.loc[ok, "motif_snr"], 1) if np.isfinite(r) else None
        xs = [float(df.loc[ok, kld].min()), float(df.loc[ok, kld].max())] if ok.any() else []
        res.figure(f"snr_{kld}", f"{LABEL[kld]} vs SNR across the population", "scatter",
                   {"x": df[kld].tolist(), "y": df["motif_snr"].tolist(), "label": df["member"].tolist(),
                    "group": fam,
                    "x_title": LABEL[kld], "y_title": "motif SNR",
                    "line": [[x, float(np.polyval(fit, x))] for x in xs] if fit is not None else None},
                   caption=f"Pearson r = {r:.3f} (p = {p:.2g}); paper {PAPER_R[kld][0]}.")
    res.table("pareto", "Pareto front of test AUROC vs each divergence (selected model marked)",
              ["divergence", "member", "test AUROC (%)", "KLD", "SNR", "selected"], front_rows)
    sel_rows = [["accuracy only", best_acc["member"], best_acc["auroc"], best_acc["motif_snr"]]] + \
        [[f"accuracy + {LABEL[k]}", s["member"], s["auroc"], s["motif_snr"]] for k, s in gains]
    res.table("selection", "Selected models: accuracy alone vs accuracy and consistency",
              ["rule", "member", "test AUROC (%)", "SNR"], sel_rows)
    return best_acc, gains


# -- claims
def _claims(res, ds, cfg, df: pd.DataFrame, corr: _Correlations, pair: _Pair, best_acc: pd.Series,
            gains: list) -> None:
    """The study's claims with their evidence, the means by activation, and the summary."""
    n, rs, near, window = len(df), corr.rs, corr.near, corr.window
    L, H, d_acc, snr_ratio = pair.L, pair.H, pair.d_acc, pair.snr_ratio

    def support(pop):
        sig = [rs[(pop, k)] for k in KLDS]
        return sum(np.isfinite(r) and r > 0 and p < 0.05 for r, p in sig), "; ".join(
            f"{LABEL[k]}: r = {r:.3f} (p = {p:.2g})" for k, (r, p) in zip(KLDS, sig))

    (pos_all, ev_all), (pos_near, ev_near) = support("all"), support(corr.near_pop)
    res.claim("Consistency correlates positively with interpretability (SNR) across a population",
              "agrees" if pos_all == 2 else "partly" if pos_all or pos_near else "differs",
              f"all {n} models: {ev_all}; the {len(near)} within {window:g} pp of the best AUROC: {ev_near}")
    res.claim("Models with near-equal accuracy can differ greatly in interpretability",
              "agrees" if d_acc <= 0.5 and snr_ratio >= 2 else "partly" if snr_ratio >= 1.3 else "differs",
              f"{L['member']} and {H['member']}: test AUROC {L['auroc']:.2f} vs {H['auroc']:.2f} %, SNR "
              f"{L['motif_snr']:.3g} vs {H['motif_snr']:.3g}")
    means = df.groupby(["batchnorm", "activation"])[["auroc", "motif_snr", *KLDS]].mean()
    groups = [bn for bn in df["batchnorm"].unique() if {(bn, "relu"), (bn, "exponential")} <= set(means.index)]
    if groups:
        wins = [means.loc[(bn, "exponential"), c] > means.loc[(bn, "relu"), c] for bn in groups
                for c in ("motif_snr", *KLDS)]
        res.claim("Exponential first-layer activations give more interpretable and consistent maps",
                  "agrees" if all(wins) else "partly" if any(wins) else "differs",
                  "mean over models, exponential vs ReLU, " + "; ".join(
                      f"{'with' if bn else 'without'} BatchNorm: " + ", ".join(
                          f"{LABEL.get(c, c)} {means.loc[(bn, 'exponential'), c]:.3g} vs "
                          f"{means.loc[(bn, 'relu'), c]:.3g}" for c in ("motif_snr", *KLDS, "auroc"))
                      for bn in groups))
    res.table("by_activation", "Means by BatchNorm and first-layer activation", ["batchnorm", "activation",
              *means.columns], [[*k, *means.loc[k]] for k in means.index])
    better = [s["motif_snr"] > best_acc["motif_snr"] for _, s in gains]
    res.claim("Selecting on accuracy and consistency together picks a more interpretable model than accuracy alone",
              "agrees" if all(better) else "partly" if any(better) else "differs",
              f"accuracy alone: {best_acc['member']} (SNR {best_acc['motif_snr']:.3g}); " + "; ".join(
                  f"with {LABEL[k]}: {s['member']} (SNR {s['motif_snr']:.3g})" for k, s in gains))

    (r1, _), (r2, _) = rs[("all", "kmer_kld")], rs[("all", "spherical_kld")]
    (q1, _), (q2, _) = (rs[(corr.near_pop, k)] for k in KLDS)
    res.summary = [
        (f"{n} DNA CNNs ({cfg['arch']}: activation x BatchNorm x {len(cfg['regularizers'])} regularisers x "
        f"{len(cfg['seeds'])} seeds) trained on {ds.name} reach test AUROC {df['auroc'].min():.1f}–"
        f"{df['auroc'].max():.1f} % (paper 97.0–98.7 % after up to 100 epochs); {_at_target(df)}."),
        (f"Across the population, SNR correlates with KLD1 at r = {r1:.3f} and with KLD2 at r = {r2:.3f} "
         f"(paper 0.618 and 0.875); among the {len(near)} models within {window:g} pp of the best test AUROC at "
         f"r = {q1:.3f} and {q2:.3f}."
         + seed_spread_sentence(corr.spread)),
        f"{L['member']} and {H['member']} differ by {d_acc:.2f} pp in test AUROC but {snr_ratio:.1f}x in SNR.",
        *(["Exponential vs ReLU first layer, mean SNR (test AUROC): " + "; ".join(
            f"{'with' if bn else 'without'} BatchNorm {means.loc[(bn, 'exponential'), 'motif_snr']:.2f} "
            f"({means.loc[(bn, 'exponential'), 'auroc']:.1f} %) vs {means.loc[(bn, 'relu'), 'motif_snr']:.2f} "
            f"({means.loc[(bn, 'relu'), 'auroc']:.1f} %)" for bn in groups) + "."] if groups else []),
        (f"Accuracy alone picks {best_acc['member']} (SNR {best_acc['motif_snr']:.3g}); accuracy with KLD2 picks "
        f"{gains[1][1]['member']} (SNR {gains[1][1]['motif_snr']:.3g})."),
    ]
