"""Values as strict JSON: shared by the CLI's ``--json`` output and the reports' ``metrics.json``."""

from __future__ import annotations

import math


def jsonable(value):
    """NaN and infinities (e.g. no validation split) become null; JSON has no such numbers. Keys become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value
