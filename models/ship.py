"""Train the checkpoints shipped for the bundled datasets: ``python -m xai_core.models.ship [dataset ...]``.

Each checkpoint records its test metric; ``tests/test_checkpoints.py`` proves it is still reached.
A summary table is written to ``docs/checkpoints.md``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from xai_core.data import load_dataset
from xai_core.progress import epoch_bar

from .cached import train_cached
from .checkpoints import SHIPPED_DIR, checkpoint_hash, read_metadata, write_shipped_hashes
from .zoo import shipped_path

# (dataset, architecture, architecture options); each is trained with seed 0 and the default recipe, on the CPU
SHIPPED: list[tuple[str, str, dict[str, Any]]] = [
    ("simu-small", "mlp", {}),
    ("simu-small", "lr", {}),
    ("pbmc68k", "mlp", {}),
    ("breast-cancer", "lr", {}),
    ("grain", "simplenet", {}),
    ("dna-motifs-small", "dna_deep", {"activation": "exponential"}),
    ("dna-motifs", "dna_deep", {"activation": "exponential"}),
    ("simu1", "mlp", {}),
    ("simu2", "mlp", {}),
    ("simuA", "mlp", {}),
    ("simuB", "mlp", {}),
    ("simuC", "mlp", {}),
]


def ship(dataset: str, arch: str, arch_kwargs: dict[str, Any]) -> Path:
    """Train ``arch`` on ``dataset`` (seed 0, CPU) and write it as the shipped checkpoint, as
    ``python -m xai_core train --dataset DATASET --arch ARCH --ship`` does; one summary line on stdout."""
    ds = load_dataset(dataset)
    out = shipped_path(dataset, arch)
    with epoch_bar(f"train {arch} on {dataset}") as progress:
        report = train_cached(ds, arch, out, seed=0, arch_kwargs=arch_kwargs, device="cpu", progress=progress,
                              reuse=False).report
    print(f"{report.metric_name} {report.metric_value:.4f} (accuracy {report.test_accuracy:.4f}, "
          f"best epoch {report.best_epoch}/{report.epochs_run}, {report.seconds:.1f} s) -> {out} "
          f"[sha256 {checkpoint_hash(out)}]")
    return out


def write_table(path: Path) -> None:
    lines = ["# Shipped checkpoints", "", "Trained with `python -m xai_core.models.ship` (seed 0). Test metric on the "
             "dataset's test split; `tests/test_checkpoints.py` checks each is still reached.", "",
             "| dataset | model | options | test metric | accuracy | epochs | train time (s) | sha256 |",
             "|---|---|---|---|---|---|---|---|"]
    for p in sorted(SHIPPED_DIR.glob("*.safetensors")):
        m = read_metadata(p)
        lines.append(f"| {m['dataset']} | {m['arch']} | {m['arch_kwargs'] or ''} | {m['metric_name']} "
                     f"{m['metric_value']:.4f} | {m['test_accuracy']:.4f} | {m['best_epoch']}/{m['epochs_run']} | "
                     f"{m['seconds']:.0f} | `{checkpoint_hash(p)}` |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("datasets", nargs="*", help="only these datasets (default: all)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # captum/zennit chatter, as the CLI silences it
    for ds, arch, arch_kwargs in SHIPPED:
        if args.datasets and ds not in args.datasets:
            continue
        ship(ds, arch, arch_kwargs)
    write_shipped_hashes()  # models/checkpoints/SHA256SUMS, checked by xai_core.models.zoo.load_model
    write_table(Path(__file__).resolve().parent.parent / "docs" / "checkpoints.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
