"""Walk every page of the dashboard for every bundled dataset in headless Debian chromium and report, per
dataset, the seconds each page took to draw and anything that went wrong (exception or error box).

    .venv/bin/python scripts/sweep_pages.py [--datasets all|a,b] [--store PATH]

Paper-size datasets build on first use (minutes, hundreds of MB); they are then cached under
$XAI_CORE_CACHE. Nothing is computed on the pages: this checks that every view opens on every dataset.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dashboard import pages
from tests import e2e

PAGES = pages.of_kind(pages.DATASET)  # the pages about the sidebar's dataset and model, the first opened by link


def main(argv: list[str] | None = None) -> int:
    from xai_core.data import DATASETS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="all")
    ap.add_argument("--store")
    args = ap.parse_args(argv)
    names = list(DATASETS.names()) if args.datasets == "all" else args.datasets.split(",")
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        store = args.store or Path(d) / "results.sqlite"
        with e2e.server(store) as url, e2e.browser() as page:
            print("| dataset | " + " | ".join(p.title for p in PAGES) + " | problems |")
            print("|---|" + "---|" * (len(PAGES) + 1))
            for name in names:
                t = time.perf_counter()
                page.goto(f"{url}/{PAGES[0].slug}?dataset={name}")
                page.wait_for_function("() => document.querySelector('[data-testid=\"stMetric\"]') || "
                                       "document.querySelector('[data-testid=\"stAlert\"]')", timeout=1_200_000)
                e2e.wait_idle(page, 1_200_000)
                times, problems = [time.perf_counter() - t], []
                problems += e2e.exceptions(page)
                for title in (p.title for p in PAGES[1:]):
                    t = time.perf_counter()
                    e2e.goto_page(page, title, timeout=1_200_000)
                    page.wait_for_timeout(300)  # let the elements mount before looking for errors
                    times.append(time.perf_counter() - t)
                    problems += [f"{title}: {x[:120]}" for x in e2e.exceptions(page)]
                    problems += [f"{title}: {x[:120]}" for x in
                                 page.locator('[data-testid="stAlertContentError"]').all_inner_texts()]
                bad += bool(problems)
                print(f"| {name} | " + " | ".join(f"{s:.2f}" for s in times) + f" | {'; '.join(problems) or 'none'} |",
                      flush=True)
    print("# seconds to draw each page (the first includes loading the dataset and model)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
