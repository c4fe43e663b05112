"""The installable package: a wheel built from the tracked files imports ``xai_core`` from another directory.

The wheel is built from a copy of the tracked files (so the checkout stays clean) with the environment's own
setuptools (``--no-build-isolation``: CI machines need no index for it), unpacked, and imported by a fresh
interpreter whose working directory and path hold no checkout.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src, out = ROOT / rel, dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)


def test_wheel_imports_from_another_directory(tmp_path):
    src, wheels, site, elsewhere = (tmp_path / d for d in ("src", "wheels", "site", "elsewhere"))
    _tracked_copy(src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("xai_core-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert tops == {"xai_core"}, f"the wheel must install only xai_core, not {sorted(tops - {'xai_core'})}"
    assert "xai_core/models/zoo.py" in names and "xai_core/models/checkpoints/SHA256SUMS" in names
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere.mkdir()
    probe = ("import xai_core, xai_core.models.zoo as zoo, xai_core.cli;"
             "from xai_core.models.checkpoints import verify_shipped;"
             "print(xai_core.__file__); print(sorted(p.name for p in zoo.SHIPPED_DIR.glob('*.safetensors'))[0])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout.splitlines()
    assert out[0].startswith(str(site)), f"xai_core came from {out[0]}, not from the wheel"
    assert out[1].endswith(".safetensors")


def test_no_top_level_models_package_is_importable_from_the_wheel_layout():
    # In the checkout, models/ is a folder beside the package; the engine reaches it only as xai_core.models.
    assert (ROOT / "xai_core" / "models").is_symlink()
    assert os.readlink(ROOT / "xai_core" / "models") == "../models"
