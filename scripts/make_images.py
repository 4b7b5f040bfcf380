"""Regenerate the pictures the README shows, into images/, with the project's own code.

Run from the repository root:  python scripts/make_images.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from helpers.data import load_mnist  # noqa: E402
from helpers.paths import project_dir  # noqa: E402
from helpers.plotting import plot_samples  # noqa: E402


def main() -> None:
    images_dir = project_dir() / "images"
    images_dir.mkdir(exist_ok=True)
    test_images, test_labels = load_mnist().test.tensors
    figure = plot_samples(test_images[:24], test_labels[:24], ncols=12)
    path = images_dir / "mnist_samples.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path.relative_to(project_dir())}")


if __name__ == "__main__":
    main()
