from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from helpers import data
from helpers.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    MNISTDataModule,
    load_mnist,
    mnist_dataloaders,
    tensor_batches,
)
from helpers.paths import data_dir

REAL_RAW = data_dir() / "MNIST" / "raw"


@pytest.fixture(scope="module")
def splits():
    return load_mnist()


def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _copy_raw(tmp_path: Path) -> Path:
    """A data folder of symlinks to the real files, so that one file can be replaced."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.RAW_FILES_MD5:
        (raw / name).symlink_to(REAL_RAW / name)
    return raw


@pytest.mark.usefixtures("real_mnist")
def test_split_sizes_and_shapes(splits):
    assert [len(d) for d in (splits.train, splits.val, splits.test)] == [55_000, 5_000, 10_000]
    images, labels = splits.train.tensors
    assert images.shape == (55_000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) == set(range(10))


@pytest.mark.usefixtures("real_mnist")
def test_images_are_normalised(splits):
    images = torch.cat([splits.train.tensors[0], splits.val.tensors[0]])
    assert abs(images.mean().item()) < 1e-3
    assert abs(images.std().item() - 1) < 1e-3


@pytest.mark.usefixtures("real_mnist")
def test_split_is_the_same_on_every_run_whatever_the_global_seed(splits):
    torch.manual_seed(123)
    again = load_mnist()
    assert torch.equal(again.val.tensors[1], splits.val.tensors[1])
    assert torch.equal(again.val.tensors[0][:50], splits.val.tensors[0][:50])
    other = load_mnist(split_seed=1)
    assert not torch.equal(other.val.tensors[1], splits.val.tensors[1])


@pytest.mark.usefixtures("real_mnist")
def test_train_and_validation_do_not_overlap(splits):
    train = {image.numpy().tobytes() for image in splits.train.tensors[0]}
    assert not any(image.numpy().tobytes() in train for image in splits.val.tensors[0])


@pytest.mark.usefixtures("real_mnist")
def test_tensor_batches_cover_every_sample_once(splits):
    loader = tensor_batches(splits.val, batch_size=128, shuffle=True)
    batches = list(loader)
    assert len(batches) == len(loader) == 40
    assert [len(b[1]) for b in batches[-2:]] == [128, 5_000 - 39 * 128]
    seen = torch.cat([b[1] for b in batches])
    assert torch.equal(seen.sort().values, splits.val.tensors[1].sort().values)
    assert not torch.equal(seen, splits.val.tensors[1])  # shuffled


@pytest.mark.usefixtures("real_mnist")
def test_dataloaders_and_datamodule_share_the_split(splits):
    train, val, test = mnist_dataloaders(batch_size=64, eval_batch_size=500)
    images, labels = next(iter(train))
    assert images.shape == (64, 1, 28, 28) and labels.shape == (64,)
    assert len(val) == 10 and len(test) == 20

    module = MNISTDataModule(batch_size=32)
    module.prepare_data()
    module.setup("fit")
    assert next(iter(module.train_dataloader()))[0].shape == (32, 1, 28, 28)
    assert torch.equal(module.val_dataloader().dataset.tensors[1], splits.val.tensors[1])
    assert len(module.test_dataloader().dataset) == 10_000
    assert module.hparams.batch_size == 32


def test_missing_data_without_network_says_what_to_do(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DatasetNotFoundError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "TUTORIAL_DATA_DIR" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_missing_data_with_download_off(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_mnist(tmp_path, download=False)


@pytest.mark.usefixtures("real_mnist")
def test_truncated_file_is_named(tmp_path):
    raw = _copy_raw(tmp_path)
    target = raw / "train-labels-idx1-ubyte"
    target.unlink()
    target.write_bytes((REAL_RAW / target.name).read_bytes()[:30_000])
    with pytest.raises(DatasetCorruptError, match="train-labels-idx1-ubyte is truncated or corrupt"):
        load_mnist(tmp_path)


@pytest.mark.usefixtures("real_mnist")
def test_damaged_file_of_the_right_size_is_named(tmp_path):
    raw = _copy_raw(tmp_path)
    target = raw / "t10k-labels-idx1-ubyte"
    target.unlink()
    content = bytearray((REAL_RAW / target.name).read_bytes())
    content[100] = (content[100] + 1) % 10
    target.write_bytes(bytes(content))
    with pytest.raises(DatasetCorruptError, match="t10k-labels-idx1-ubyte is corrupt"):
        load_mnist(tmp_path)


@pytest.mark.usefixtures("real_mnist")
def test_data_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    _copy_raw(tmp_path)
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    shutil.rmtree(tmp_path / "MNIST")
    _offline(monkeypatch)
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_mnist()


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "128"])
def test_bad_batch_size(value):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        MNISTDataModule(batch_size=value)


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5])
def test_bad_split(value):
    with pytest.raises(ValueError, match=r"val_fraction must be a number strictly between 0 and 1"):
        load_mnist(val_fraction=value)
    with pytest.raises(ValueError, match=r"val_fraction"):
        MNISTDataModule(val_fraction=value)
