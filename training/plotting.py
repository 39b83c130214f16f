"""What the results scripts share: matplotlib without a display, and mean ± std cells."""

from __future__ import annotations

import statistics


def pyplot():  # noqa: ANN201 (matplotlib.pyplot)
    """matplotlib.pyplot on the Agg backend: results are regenerated on machines without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_std(values: list[float], digits: int = 3) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"
