"""Saving a diagnostics figure as `<run>/figures/<name>.png`: one place for what the monitor's and
the report's diagnostic figures did alike (tight layout, 110 dpi, the pyplot figure closed), so
their files stay byte for byte what they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 110  # the diagnostics figures' resolution (the report's own figures: harness.report.figures.PNG_DPI)


def save_figure(fig: Any, run_dir: Path, name: str, dpi: int = DPI) -> Path:
    """Lay out, write and close a pyplot figure; the path of the PNG."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=dpi)
    plt.close(fig)
    return out / f"{name}.png"
