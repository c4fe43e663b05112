"""Which torch device a run uses: ``cpu``, ``cuda``/``cuda:N``, or ``auto``. Shared by the CLI and the dashboard."""
from .errors import XaiError


def resolve_device(value: str | None) -> str:
    """``--device``: ``cpu``, ``cuda`` (or ``cuda:N``), or ``auto`` (CUDA when this machine has it).

    Parameters
    ----------
    value : str or None
        The device asked for (case and surrounding blanks ignored); None means ``cpu``.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    XaiError
        For another value, CUDA asked for on a machine without it, or a ``cuda:N`` beyond the devices here.
    """
    import torch  # noqa: PLC0415 - torch: cli.py imports this module, and `python -m xai_core --help` must not load torch

    v = (value or "cpu").strip().lower()
    if v == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if v == "cpu":
        return v
    if v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit()):
        if not torch.cuda.is_available():
            raise XaiError(f"--device {value}: this machine has no CUDA device; use --device cpu or --device auto")
        if ":" in v and int(v[5:]) >= torch.cuda.device_count():
            raise XaiError(f"--device {value}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ...)")
        return v
    raise XaiError(f"--device must be cpu, cuda, cuda:N or auto, got {value!r}")
