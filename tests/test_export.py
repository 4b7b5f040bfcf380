"""helpers.export: the parity check passes a faithful export and fails a wrong one, and the labelling command
labels a folder of PNGs as the PyTorch model would, with one sentence for each kind of bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers.export import (
    OnnxModel,
    Parity,
    ParityError,
    add_metadata,
    compare_outputs,
    label_folder,
    main,
)

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = 0.1307, 0.3081
CLASSES = [str(digit) for digit in range(10)]
TOLERANCE = 1e-4


def tiny_network() -> nn.Module:
    """A small convolutional classifier of 28x28 images, seeded, in evaluation mode."""
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, stride=2),  # 13x13
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 13 * 13, 10),
    )
    with torch.no_grad():  # running statistics that are not the defaults, so that eval mode matters
        network[1].running_mean.uniform_(-0.5, 0.5)
        network[1].running_var.uniform_(0.5, 2.0)
    return network.eval()


def batches(count: int = 3, size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 1, 28, 28, generator=generator), torch.zeros(size)) for _ in range(count)]


def export_onnx(network: nn.Module, path: Path) -> Path:
    """Export as notebook 13 does: the dynamo exporter, a dynamic batch dimension, one file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own notices are not under test
        torch.onnx.export(
            network,
            (torch.randn(2, 1, 28, 28),),
            path,
            dynamo=True,
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            external_data=False,
            verbose=False,
        )
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[nn.Module, Path]:
    """The tiny network and its ONNX file, with the metadata a consumer needs."""
    network = tiny_network()
    path = export_onnx(network, tmp_path_factory.mktemp("onnx") / "model.onnx")
    add_metadata(path, {"classes": json.dumps(CLASSES), "mean": str(MEAN), "std": str(STD)})
    return network, path


def test_a_faithful_onnx_export_passes_the_parity_check(exported):
    network, path = exported
    parity = compare_outputs(network, OnnxModel(path), batches())
    assert parity.images == 3 * 64 and parity.disagreements == 0
    assert parity.max_abs_difference < TOLERANCE
    parity.check(TOLERANCE)


def test_the_check_fails_when_the_model_changed_after_the_export(exported):
    """The export no longer matches the model it should: one weight of the model changed by 0.05."""
    network, path = exported
    changed = tiny_network()
    with torch.no_grad():
        changed[-1].weight[3, 0] += 0.05
    parity = compare_outputs(changed, OnnxModel(path), batches())
    assert parity.max_abs_difference > 10 * TOLERANCE
    with pytest.raises(ParityError, match=r"differs from the PyTorch model: outputs by up to"):
        parity.check(TOLERANCE)


def test_the_check_fails_on_an_onnx_file_with_a_perturbed_weight(exported, tmp_path):
    """A wrong export: the file's copy of a weight is not the model's."""
    import onnx
    from onnx import numpy_helper

    network, path = exported
    model = onnx.load(str(path))
    initializer = max(model.graph.initializer, key=lambda t: len(numpy_helper.to_array(t).ravel()))
    weights = numpy_helper.to_array(initializer).copy()
    weights.flat[0] += 0.05
    initializer.CopyFrom(numpy_helper.from_array(weights, initializer.name))
    onnx.save(model, str(tmp_path / "wrong.onnx"))
    parity = compare_outputs(network, OnnxModel(tmp_path / "wrong.onnx"), batches())
    assert parity.max_abs_difference > 10 * TOLERANCE
    with pytest.raises(ParityError):
        parity.check(TOLERANCE)


def test_the_check_fails_on_a_program_exported_in_training_mode():
    """`torch.export` keeps the mode it found: BatchNorm on batch statistics instead of its running ones, the
    same weights and another function. (`torch.onnx.export` exports evaluation mode unless told otherwise.)"""
    network = tiny_network()
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(
        tiny_network().train(), (torch.randn(2, 1, 28, 28),), dynamic_shapes=({0: batch},)
    )
    parity = compare_outputs(network, program.module(), batches())
    assert parity.disagreements > 0
    with pytest.raises(ParityError):
        parity.check(TOLERANCE)


def test_different_classes_fail_the_check_whatever_the_tolerance():
    images = batches(count=1, size=10)

    def reference(x: torch.Tensor) -> torch.Tensor:
        return torch.eye(10)[: len(x)]

    def swapped(x: torch.Tensor) -> torch.Tensor:
        logits = reference(x).clone()
        logits[:3] = logits[:3].flip(dims=[1])  # three images now predict another class
        return logits

    parity = compare_outputs(reference, swapped, images)
    assert parity.disagreements == 3
    with pytest.raises(ParityError, match="the predicted class on 3 of 10 images"):
        parity.check(tolerance=10.0)


def test_a_nan_output_fails_the_check():
    parity = compare_outputs(
        lambda x: torch.zeros(len(x), 10), lambda x: torch.full((len(x), 10), math.nan), batches(1)
    )
    assert parity.max_abs_difference == math.inf
    with pytest.raises(ParityError):
        parity.check(TOLERANCE)


def test_a_wrong_output_shape_and_an_empty_loader_are_explained():
    with pytest.raises(
        ParityError, match=r"outputs of shape \(1, 10\) where the PyTorch model returns \(64, 10\)"
    ):
        compare_outputs(lambda x: torch.zeros(len(x), 10), lambda x: torch.zeros(1, 10), batches(1))
    with pytest.raises(ValueError, match="no batch to compare"):
        compare_outputs(lambda x: x, lambda x: x, [])


def test_parity_check_passes_within_the_tolerance():
    Parity(images=5, max_abs_difference=1e-6, disagreements=0).check(TOLERANCE)


def write_pngs(folder: Path, images: torch.Tensor) -> list[str]:
    """Write normalised images as 8-bit PNGs, as a user's files would be; returns their names."""
    folder.mkdir(exist_ok=True)
    pixels = ((images[:, 0] * STD + MEAN) * 255).round().clamp(0, 255).to(torch.uint8)
    names = [f"image-{i}.png" for i in range(len(images))]
    for name, image in zip(names, pixels, strict=True):
        Image.fromarray(image.numpy()).save(folder / name)
    return names


def png_images(count: int) -> torch.Tensor:
    """Normalised images whose pixels are whole numbers 0-255, so that the PNG round trip is exact."""
    generator = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (count, 1, 28, 28), generator=generator).float()
    return (pixels / 255 - MEAN) / STD


def test_label_folder_gives_the_pytorch_models_classes_and_probabilities(exported, tmp_path):
    network, path = exported
    images = png_images(6)
    names = write_pngs(tmp_path / "images", images)
    (tmp_path / "images" / "notes.txt").write_text("not an image, not a PNG: ignored")
    labels = label_folder(path, tmp_path / "images")
    with torch.no_grad():
        probabilities = network(images).softmax(dim=1)
    assert [label.file for label in labels] == sorted(names)
    for label in labels:
        row = probabilities[names.index(label.file)]
        assert label.label == CLASSES[row.argmax()]
        assert label.probability == pytest.approx(row.max().item(), abs=1e-5)


def test_the_command_prints_one_line_per_image(exported, tmp_path):
    _, path = exported
    write_pngs(tmp_path / "images", png_images(3))
    result = subprocess.run(
        [sys.executable, "-m", "helpers.export", str(path), str(tmp_path / "images")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" → ")[0] for line in lines] == ["image-0.png", "image-1.png", "image-2.png"]
    for line in lines:
        label, probability = line.split(" → ")[1].split(", probability ")
        assert label in CLASSES and 0.1 <= float(probability) <= 1


def test_the_command_needs_no_torch(exported, tmp_path):
    """A consumer runs the exported model without the training stack: the command never imports torch."""
    _, path = exported
    write_pngs(tmp_path / "images", png_images(1))
    code = (
        "import sys, helpers.export as e; e.main([sys.argv[1], sys.argv[2]]); "
        "print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "images")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False"


def run_main(capsys, *arguments: str) -> tuple[int, str]:
    status = main([str(a) for a in arguments])
    captured = capsys.readouterr()
    return status, captured.err.strip()


def test_bad_input_gets_one_sentence_and_status_2(exported, tmp_path, capsys):
    _, path = exported
    good = tmp_path / "good"
    write_pngs(good, png_images(1))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no PNG here")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scan.png").write_text("this is text, not an image")
    large = tmp_path / "large"
    large.mkdir()
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(large / "big.png")
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    bare = export_onnx(tiny_network(), tmp_path / "bare.onnx")  # no metadata

    cases = {
        (tmp_path / "missing.onnx", good): "there is no model file",
        (not_onnx, good): "is not an ONNX model that onnxruntime can load",
        (bare, good): "does not say how to prepare images (no classes, mean, std in its metadata)",
        (path, tmp_path / "nowhere"): "there is no folder",
        (path, empty): "holds no PNG image (*.png): put the images to label there.",
        (path, broken): "scan.png is not an image that can be read",
        (path, large): "big.png is 32x32 pixels, but the model takes 28x28: resize it first.",
    }
    for (model, folder), expected in cases.items():
        status, message = run_main(capsys, model, folder)
        assert status == 2, (model, folder)
        assert expected in message, message
        assert message.startswith("error: ") and len(message.splitlines()) == 1 and "Traceback" not in message
