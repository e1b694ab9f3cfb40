"""Learning curves from Lightning's CSVLogger ``metrics.csv`` files, for docs/training.md.

    python -m training.report OUT.png LABEL=path/metrics.csv:COLUMN [...]
"""
from __future__ import annotations

import csv
import sys


def read_curve(path: str, column: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the rows where ``column`` is set."""
    steps, values = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(column):
                steps.append(int(row["step"]))
                values.append(float(row[column]))
    return steps, values


def plot(out: str, curves: dict[str, tuple[str, str]], title: str = "") -> None:
    """curves: label -> (metrics.csv, column)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, (path, column) in curves.items():
        x, y = read_curve(path, column)
        ax.plot(x, y, marker="o" if len(x) < 15 else None, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    specs = {}
    for arg in sys.argv[2:]:
        label, rest = arg.split("=", 1)
        path, column = rest.rsplit(":", 1)
        specs[label] = (path, column)
    plot(sys.argv[1], specs)
