"""MNIST for the series: one fixed 55k/5k train/validation split, the 10k test set, normalised.

Loading strategy (`python -m benchmarks.data_loading` measures it; the README has the figures): MNIST is
small (47 MB of pixels), so it is read once with `torchvision.datasets.MNIST`, normalised once and kept
in memory as tensors, and each batch is one tensor index (`tensor_batches`) rather than 128 calls to
`__getitem__` and a collate, several times faster than a per-sample `DataLoader` over the same tensors and
over ten times faster than decoding and normalising each image on the fly.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torchvision
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from helpers.checks import check_fraction, check_non_negative_int, check_positive_int
from helpers.paths import DATA_DIR_VARIABLE, data_dir

MEAN, STD = 0.1307, 0.3081  # pixel mean and standard deviation of the MNIST training images
CLASSES = tuple(str(digit) for digit in range(10))
NUM_TRAIN_IMAGES = 60_000
DEFAULT_VAL_FRACTION = 5_000 / NUM_TRAIN_IMAGES  # 55,000 images to train on, 5,000 to validate

# MD5 sums of the four uncompressed files that torchvision reads from <root>/MNIST/raw/.
RAW_FILES_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


class DatasetNotFoundError(FileNotFoundError):
    """MNIST is not on disk and could not be downloaded."""


class DatasetCorruptError(ValueError):
    """An MNIST file on disk is truncated or damaged."""


@dataclass(frozen=True)
class MNISTSplits:
    """The three splits as in-memory datasets of (image, label): images are float32 (N, 1, 28, 28)."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset


def _raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _idx_expected_size(path: Path) -> int:
    """Size in bytes that an IDX file must have according to its own header, or -1 if it has none."""
    with path.open("rb") as file:
        header = file.read(4)
        if len(header) < 4 or header[:2] != b"\x00\x00":
            return -1
        ndim = header[3]
        dims = file.read(4 * ndim)
    if len(dims) < 4 * ndim:
        return -1
    count = 1
    for i in range(ndim):
        count *= int.from_bytes(dims[4 * i : 4 * i + 4], "big")
    return 4 + 4 * ndim + count


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_PUT_A_GOOD_COPY = "delete it and put a good copy there."


def _verify_file(path: Path, md5: str) -> None:
    """Raise `DatasetCorruptError`, naming `path`, if it is not MNIST's file of that name."""
    try:
        size, expected = path.stat().st_size, _idx_expected_size(path)
        matches = size == expected and _md5(path) == md5
    except OSError as error:  # unreadable: permissions, a dangling link, an I/O error
        raise DatasetCorruptError(f"{path} cannot be read ({error.strerror}): {_PUT_A_GOOD_COPY}") from None
    if expected < 0:
        raise DatasetCorruptError(
            f"{path} is not an MNIST file (no IDX header; {size:,} bytes): {_PUT_A_GOOD_COPY}"
        )
    if size != expected:
        raise DatasetCorruptError(
            f"{path} is truncated or corrupt ({size:,} bytes, its header promises {expected:,}): "
            f"{_PUT_A_GOOD_COPY}"
        )
    if not matches:
        raise DatasetCorruptError(f"{path} is corrupt (its MD5 sum is not MNIST's {md5}): {_PUT_A_GOOD_COPY}")


def verify_raw_files(root: Path) -> None:
    """Raise `DatasetCorruptError`, naming the file, if any MNIST file is truncated or damaged."""
    for name, md5 in RAW_FILES_MD5.items():
        _verify_file(_raw_dir(root) / name, md5)


def _check_layout(root: Path) -> list[str]:
    """The names of the MNIST files missing from `<root>/MNIST/raw/`, after checking that every path on
    the way is a folder and every file that is there is a file: one sentence naming the path if not."""
    for folder in (root, root / "MNIST", _raw_dir(root)):
        if folder.exists() and not folder.is_dir():
            raise DatasetNotFoundError(
                f"{folder} is a file, but MNIST needs a folder there: move the file away or set "
                f"{DATA_DIR_VARIABLE} to another folder."
            )
    missing = []
    for name in RAW_FILES_MD5:
        path = _raw_dir(root) / name
        if path.is_dir():
            raise DatasetNotFoundError(
                f"{path} is a folder, but it must be MNIST's file of that name: remove the folder and put "
                f"the uncompressed file there."
            )
        if not path.is_file():
            missing.append(name)
    return missing


def _explain_missing(root: Path, missing: list[str]) -> str:
    """What is missing from `<root>/MNIST/raw/` and what to do, as the end of a sentence."""
    gzipped = [name for name in missing if (_raw_dir(root) / f"{name}.gz").is_file()]
    if gzipped:
        return f"only the .gz of {', '.join(gzipped)} is there: uncompress it in place (gunzip)"
    if len(missing) < len(RAW_FILES_MD5):
        return (
            f"{', '.join(missing)} missing while the other files are there: copy the missing files there "
            f"(see data/README.md), or empty the folder to download all four"
        )
    return (
        f"put the four uncompressed files ({', '.join(RAW_FILES_MD5)}) there, or set {DATA_DIR_VARIABLE} "
        f"to the folder that holds MNIST/raw/"
    )


def _download(root: Path) -> None:
    """Fetch MNIST with torchvision, or explain in one sentence what to do when that fails.

    A folder that cannot be written and a failed network are different problems with different
    remedies, so a write error is reported as such, not as "no network".
    """
    raw = _raw_dir(root)
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetNotFoundError(
            f"MNIST is not in {raw} and that folder cannot be created ({error.strerror}): make "
            f"{root} writable, or set {DATA_DIR_VARIABLE} to a folder you can write to."
        ) from None
    try:
        for train in (True, False):
            torchvision.datasets.MNIST(root, train=train, download=True)
    except urllib.error.URLError as error:
        reason = f"no network? {error.reason}"
    except RuntimeError as error:  # torchvision: every mirror failed, or a download was damaged
        reason = f"no network? {str(error).splitlines()[-1].strip()}"
    except OSError as error:  # a local write failed: no network reason applies
        raise DatasetNotFoundError(
            f"MNIST could not be downloaded into {raw}: writing {error.filename or raw} failed "
            f"({error.strerror}); make it writable and free some space, or set {DATA_DIR_VARIABLE} to "
            f"another folder."
        ) from None
    else:
        return
    explanation = _explain_missing(root, _check_layout(root))
    raise DatasetNotFoundError(
        f"MNIST is not in {raw} and could not be downloaded ({reason}): {explanation}."
    ) from None


def _normalised_images(dataset: torchvision.datasets.MNIST) -> torch.Tensor:
    return ((dataset.data.float() / 255 - MEAN) / STD).unsqueeze(1)


def ensure_mnist(root: str | Path | None = None, download: bool = True) -> Path:
    """Make sure the four MNIST files are in `<root>/MNIST/raw/` and intact; return `root`."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a folder path (a str or Path), got {root!r}.")
    root = Path(root) if root is not None else data_dir()
    missing = _check_layout(root)
    if missing and not download:
        raise DatasetNotFoundError(
            f"MNIST is not in {_raw_dir(root)}: {_explain_missing(root, missing)}, or pass download=True."
        )
    if 0 < len(missing) < len(RAW_FILES_MD5):
        # Part of MNIST is there (copied by hand, most likely): a download would overwrite those files.
        raise DatasetNotFoundError(
            f"MNIST is incomplete in {_raw_dir(root)}: {_explain_missing(root, missing)}."
        )
    if missing:
        _download(root)
    verify_raw_files(root)
    return root


def load_mnist(
    root: str | Path | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = 0,
    download: bool = True,
) -> MNISTSplits:
    """Load MNIST into memory as normalised train/validation/test tensors.

    The validation images are drawn from the 60,000 training images with their own seeded
    generator, so the split is the same on every run whatever else was seeded.
    """
    check_fraction("val_fraction", val_fraction)
    check_non_negative_int("split_seed", split_seed)
    root = ensure_mnist(root, download)
    train_full = torchvision.datasets.MNIST(root, train=True, download=False)
    test = torchvision.datasets.MNIST(root, train=False, download=False)
    images, labels = _normalised_images(train_full), train_full.targets
    num_val = round(len(labels) * val_fraction)
    if not 0 < num_val < len(labels):
        raise ValueError(f"val_fraction={val_fraction!r} leaves no image on one side of the split.")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = order[:num_val], order[num_val:]
    return MNISTSplits(
        train=TensorDataset(images[train_idx], labels[train_idx]),
        val=TensorDataset(images[val_idx], labels[val_idx]),
        test=TensorDataset(_normalised_images(test), test.targets),
    )


def tensor_batches(
    dataset: TensorDataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A `DataLoader` that yields whole batches by indexing the in-memory tensors once per batch.

    A `BatchSampler` is the loader's sampler and `batch_size=None` turns off collation, so the
    dataset receives a list of indices and returns a ready batch. `generator` shuffles with a random
    generator of its own instead of PyTorch's global one (a benchmark's seeded order per round).
    """
    check_positive_int("batch_size", batch_size)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


def mnist_dataloaders(
    batch_size: int = 128,
    eval_batch_size: int = 1_000,
    root: str | Path | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled), validation and test loaders for a plain PyTorch training loop."""
    check_positive_int("batch_size", batch_size)
    check_positive_int("eval_batch_size", eval_batch_size)
    splits = load_mnist(root, val_fraction)
    return (
        tensor_batches(splits.train, batch_size, shuffle=True),
        tensor_batches(splits.val, eval_batch_size),
        tensor_batches(splits.test, eval_batch_size),
    )


class MNISTDataModule(pl.LightningDataModule):
    """The same splits and loaders as `mnist_dataloaders`, packaged for a Lightning `Trainer`."""

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int = 1_000,
        root: str | Path | None = None,
        val_fraction: float = DEFAULT_VAL_FRACTION,
    ) -> None:
        super().__init__()
        check_positive_int("batch_size", batch_size)
        check_positive_int("eval_batch_size", eval_batch_size)
        check_fraction("val_fraction", val_fraction)
        self.save_hyperparameters(ignore=["root"])
        self.root = root
        self.splits: MNISTSplits | None = None

    def prepare_data(self) -> None:
        ensure_mnist(self.root)  # Lightning calls this on one process only: download there

    def setup(self, stage: str) -> None:
        if self.splits is None:
            self.splits = load_mnist(self.root, self.hparams.val_fraction, download=False)

    def _loader(self, split: str, batch_size: int, shuffle: bool = False) -> DataLoader:
        if self.splits is None:
            raise RuntimeError(
                f"MNISTDataModule has no data yet for its {split} loader: call datamodule.setup('fit') "
                "first (a Trainer calls it for you)."
            )
        dataset = getattr(self.splits, split)
        if self.trainer is not None and self.trainer.world_size > 1:
            # Under DDP, Lightning gives each process its own shard by adding a DistributedSampler,
            # which needs a standard per-sample loader (slower per batch, still small next to compute).
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
        return tensor_batches(dataset, batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size)
