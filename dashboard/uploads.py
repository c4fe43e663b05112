"""Files brought in through the dashboard: uploads saved under the cache folder (``uploads/<content hash>/``)
and ``.zip`` archives (image folders) extracted safely (no zip slip, links or zip bombs)."""
from __future__ import annotations

import hashlib
import re
import shutil
import stat
import time
import zipfile
from pathlib import Path

from xai_core.data import UserDataError, cache_dir

# an uploaded .zip (an image folder) is refused past these, before and while extracting
MAX_ZIP_BYTES = 8 << 30
MAX_ZIP_FILES = 500_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed of one member: more looks like a zip bomb
SKIP_IN_ZIP = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def uploads_dir() -> Path:
    """Where uploads are saved: ``uploads/`` in the cache folder."""
    return cache_dir() / "uploads"


def safe_filename(name: str) -> str:
    """A safe file name from an uploaded one: its last part, odd characters as ``_``, at most 120 long."""
    base = Path(str(name).replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return base[:120]


def save_upload(name: str, data: bytes) -> Path:
    """Write an uploaded file under the cache (``uploads/<content hash>/<name>``) and return what to read: the
    file, or for a ``.zip`` the folder it was extracted to. The same bytes uploaded again land on the same path,
    so an unchanged upload is recognised and not read twice."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = uploads_dir() / digest
    folder.mkdir(parents=True, exist_ok=True)
    fname = safe_filename(name)
    path = folder / fname
    if not path.exists() or path.stat().st_size != len(data):
        tmp = folder / f".{fname}.part-{time.time_ns()}"
        tmp.write_bytes(data)
        tmp.replace(path)
    if fname.lower().endswith(".zip"):
        return extract_zip(path, folder / Path(fname).stem)
    return path


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_zip(zpath: Path, target: Path, max_bytes: int = MAX_ZIP_BYTES, max_files: int = MAX_ZIP_FILES) -> Path:
    """Extract ``zpath`` into ``target`` safely and return the folder to read (see ``data_root``).

    Refused: members whose path escapes ``target`` (absolute, ``..``: "zip slip"), links, more than
    ``max_files`` files, more than ``max_bytes`` in all, or a member that inflates more than ``MAX_ZIP_RATIO``
    times; sizes are counted while copying, not taken from the (forgeable) header. Extracted to a temporary
    folder first, so a refused archive leaves nothing behind."""
    if target.exists():
        return data_root(target)
    try:
        zf = zipfile.ZipFile(zpath)
    except zipfile.BadZipFile:
        raise UserDataError(zpath.name, "not a readable .zip archive",
                            "zip the folder again and re-upload it") from None
    tmp = target.with_name(f".{target.name}.part-{time.time_ns()}")
    root = tmp.resolve()
    try:
        with zf:
            members = [m for m in zf.infolist() if not any(s in m.filename for s in SKIP_IN_ZIP)]
            files = [m for m in members if not m.is_dir()]
            if len(files) > max_files:
                raise UserDataError(zpath.name, f"the archive holds {len(files):,} files (at most {max_files:,})",
                                    "give the folder's path on this machine instead")
            if sum(m.file_size for m in files) > max_bytes:
                raise UserDataError(zpath.name, f"the archive unpacks to more than {max_bytes >> 30} GiB",
                                    "give the folder's path on this machine instead")
            total = 0
            for m in members:
                name = m.filename.replace("\\", "/")
                dest = (root / name).resolve()
                if name.startswith("/") or (dest != root and root not in dest.parents):
                    raise UserDataError(zpath.name, f"member {m.filename!r} points outside the archive's folder",
                                        "zip the folder again without absolute paths or '..'")
                if _is_link(m):
                    raise UserDataError(zpath.name, f"member {m.filename!r} is a link", "zip the files themselves")
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                limit = max(m.compress_size, 1024) * MAX_ZIP_RATIO
                written = 0
                with zf.open(m) as src, open(dest, "wb") as out:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        written += len(block)
                        total += len(block)
                        if written > limit or total > max_bytes:
                            raise UserDataError(zpath.name, f"member {m.filename!r} inflates far beyond its "
                                                "compressed size", "give the folder's path on this machine instead")
                        out.write(block)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data_root(target)


def data_root(folder: Path) -> Path:
    """What to read inside an extracted archive: descend while it holds a single folder and nothing else (a
    zip of ``cells/`` holding ``cells/a``, ``cells/b`` gives ``cells``); a single file is that file."""
    while True:
        kids = [k for k in folder.iterdir() if not k.name.startswith(".")]
        if len(kids) != 1:
            return folder
        if kids[0].is_file():
            return kids[0]
        folder = kids[0]

