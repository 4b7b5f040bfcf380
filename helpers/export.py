"""Exported models: check that they compute what the trained model does, and label images with one.

`compare_outputs` runs the PyTorch model and an exported copy over the same batches and reports the largest
difference between their outputs and how many predicted classes differ (notebook 13 shows its code).
`OnnxModel` runs an ONNX file with onnxruntime; `label_folder`, also a command,
`python -m helpers.export MODEL.onnx FOLDER`, labels every PNG in a folder with only onnxruntime, NumPy and
Pillow: no torch and no training code, with the normalisation and class names read from the ONNX file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# What a consumer needs to prepare images, stored in the ONNX file's metadata (`add_metadata`).
REQUIRED_METADATA = ("classes", "mean", "std")


class ParityError(AssertionError):
    """An exported model does not compute what the PyTorch model computes."""


@dataclass(frozen=True)
class Parity:
    """How far an exported model's outputs are from the PyTorch model's over the same images."""

    images: int
    max_abs_difference: float  # the largest |exported - PyTorch| over every output of every image
    disagreements: int  # images whose predicted class (the largest output) differs

    def check(self, tolerance: float) -> None:
        """Raise `ParityError` unless every output is within `tolerance` and every predicted class agrees."""
        if self.max_abs_difference > tolerance or self.disagreements:
            raise ParityError(
                f"the exported model differs from the PyTorch model: outputs by up to "
                f"{self.max_abs_difference:.3g} (tolerance {tolerance:g}), the predicted class on "
                f"{self.disagreements} of {self.images:,} images; export the trained weights again, in "
                f"eval mode."
            )


def compare_outputs(
    reference: Callable[[torch.Tensor], torch.Tensor],
    exported: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable,
) -> Parity:
    """Run both models on every batch of images (or (images, labels)) and compare their outputs."""
    import torch

    images, worst, disagreements = 0, 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            inputs = batch[0] if isinstance(batch, tuple | list) else batch
            expected, actual = reference(inputs), exported(inputs)
            if actual.shape != expected.shape:
                raise ParityError(
                    f"the exported model returns outputs of shape {tuple(actual.shape)} where the PyTorch "
                    f"model returns {tuple(expected.shape)}: export it again with a dynamic batch dimension."
                )
            difference = (actual - expected).abs().max().item()
            worst = max(worst, difference if math.isfinite(difference) else math.inf)  # NaN counts as wrong
            disagreements += int((actual.argmax(dim=1) != expected.argmax(dim=1)).sum())
            images += len(inputs)
    if images == 0:
        raise ValueError("there was no batch to compare: pass a loader that yields images.")
    return Parity(images, worst, disagreements)


def add_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Store `metadata` (string keys and values) in the ONNX file at `path`, where onnxruntime reads it."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **metadata})
    onnx.save(model, str(path))


class OnnxModel:
    """An ONNX file run by onnxruntime on the CPU: images in, the model's outputs out."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"there is no model file {path}: pass the path of an exported .onnx file."
            )
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"{path} is not an ONNX model that onnxruntime can load ({reason}): export it again."
            ) from None
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        self.input_shape = model_input.shape  # e.g. ['batch', 1, 28, 28]: a name for a dynamic dimension
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    def run(self, images: np.ndarray) -> np.ndarray:
        """The first output for a float32 array of images."""
        return self.session.run(None, {self.input_name: images})[0]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The first output for a tensor of images, as a tensor: a drop-in for the PyTorch model."""
        import torch

        return torch.from_numpy(self.run(images.numpy(force=True)))


@dataclass(frozen=True)
class Label:
    """One image's predicted class and the probability the model gives it."""

    file: str
    label: str
    probability: float


def _read_png(path: Path, height: int, width: int) -> np.ndarray:
    """A grayscale image as float pixels in [0, 1], or one sentence saying why it cannot be used."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.float32) / 255
    except (UnidentifiedImageError, OSError):
        raise ValueError(
            f"{path} is not an image that can be read: replace it with a PNG or move it out of the folder."
        ) from None
    if pixels.shape != (height, width):
        raise ValueError(
            f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, but the model takes {width}x{height}: "
            f"resize it first."
        )
    return pixels


def label_folder(model_path: str | Path, folder: str | Path) -> list[Label]:
    """Label every PNG in `folder` with the ONNX model at `model_path`, in file-name order."""
    model = OnnxModel(model_path)
    missing = [key for key in REQUIRED_METADATA if key not in model.metadata]
    if missing:
        raise ValueError(
            f"{model_path} does not say how to prepare images (no {', '.join(missing)} in its metadata): "
            f"export it with helpers.export.add_metadata."
        )
    classes = json.loads(model.metadata["classes"])
    mean, std = float(model.metadata["mean"]), float(model.metadata["std"])
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"there is no folder {folder}: pass the folder that holds the PNG images.")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not paths:
        raise ValueError(f"{folder} holds no PNG image (*.png): put the images to label there.")
    height, width = model.input_shape[-2:]
    images = np.stack([_read_png(path, height, width) for path in paths])[:, None]  # (N, 1, H, W)
    logits = model.run(((images - mean) / std).astype(np.float32))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # softmax, without overflow
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    return [
        Label(path.name, classes[index], float(probabilities[row, index]))
        for row, (path, index) in enumerate(zip(paths, best, strict=True))
    ]


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers.export MODEL.onnx FOLDER`: print each PNG's class and probability."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.export",
        description="Label every PNG in a folder with an exported ONNX model.",
    )
    parser.add_argument("model", help="the .onnx file (with classes, mean and std in its metadata)")
    parser.add_argument("folder", help="the folder of PNG images to label")
    arguments = parser.parse_args(argv)
    try:
        labels = label_folder(arguments.model, arguments.folder)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for label in labels:
        print(f"{label.file} → {label.label}, probability {label.probability:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
