"""The cost guard shared by the command line and the dashboard: how many model passes a run may take before
the user must confirm it (``--yes`` on the command line, a confirmation in the dashboard)."""
from __future__ import annotations

COST_LIMIT = 5e7  # forward + backward passes


def needs_confirmation(passes: float) -> bool:
    """True when a run's estimated forward + backward passes exceed ``COST_LIMIT``."""
    return float(passes) > COST_LIMIT
