"""Train the checkpoints shipped for the bundled datasets: ``python -m xai_core.models.ship [dataset ...]``.

Each checkpoint records its test metric; ``tests/test_checkpoints.py`` proves it is still reached.
A summary table is written to ``docs/checkpoints.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xai_core.cli import main as cli_main

# (dataset, architecture, extra CLI args)
SHIPPED: list[tuple[str, str, list[str]]] = [
    ("simu-small", "mlp", []),
    ("simu-small", "lr", []),
    ("pbmc68k", "mlp", []),
    ("breast-cancer", "lr", []),
    ("grain", "simplenet", []),
    ("dna-motifs-small", "dna_deep", ["--arch-option", "activation=\"exponential\""]),
    ("dna-motifs", "dna_deep", ["--arch-option", "activation=\"exponential\""]),
    ("simu1", "mlp", []),
    ("simu2", "mlp", []),
    ("simuA", "mlp", []),
    ("simuB", "mlp", []),
    ("simuC", "mlp", []),
]


def write_table(path: Path) -> None:
    from xai_core.models.checkpoints import checkpoint_hash, read_metadata
    from xai_core.models.checkpoints import SHIPPED_DIR

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
    for ds, arch, extra in SHIPPED:
        if args.datasets and ds not in args.datasets:
            continue
        rc = cli_main(["train", "--dataset", ds, "--arch", arch, "--ship", *extra])
        if rc:
            return rc
    from xai_core.models.checkpoints import write_shipped_hashes

    write_shipped_hashes()  # models/checkpoints/SHA256SUMS, checked by xai_core.models.zoo.load_model
    write_table(Path(__file__).resolve().parent.parent / "docs" / "checkpoints.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
