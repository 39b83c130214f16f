"""What the results scripts share: matplotlib without a display, and mean ± std cells."""

from __future__ import annotations

import statistics


def pyplot():  # noqa: ANN201 (matplotlib.pyplot)
    """matplotlib.pyplot on the Agg backend: results are regenerated on machines without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std over seeds; std 0 for a single seed."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values: list[float], digits: int = 3) -> str:
    mean, std = mean_and_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
