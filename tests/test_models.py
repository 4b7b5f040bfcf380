import pytest
import torch

from helpers.models import ConvNet, count_parameters


def test_output_shape_and_parameter_count():
    model = ConvNet()
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert count_parameters(model) == 207_018
    assert ConvNet(channels=8, hidden=32, num_classes=3)(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_trains_on_a_batch():
    torch.manual_seed(0)
    model = ConvNet()
    images, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]  # it can memorise one batch


def test_eval_mode_is_deterministic():
    model = ConvNet().eval()
    images = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(images), model(images))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 0}, "channels must be a positive integer"),
        ({"hidden": -1}, "hidden must be a positive integer"),
        ({"num_classes": 2.0}, "num_classes must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"dropout": -0.1}, "dropout must be a probability"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvNet(**kwargs)


def test_classifier_logs_the_keys_the_notebooks_read(tmp_path):
    import pandas as pd
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger
    from torch.utils.data import TensorDataset

    from helpers.data import tensor_batches
    from helpers.models import MNISTClassifier

    pl.seed_everything(0)
    data = TensorDataset(torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,)))
    model = MNISTClassifier(learning_rate=0.005)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=CSVLogger(tmp_path, name="t"),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, tensor_batches(data, 64, shuffle=True), tensor_batches(data, 128))
    trainer.test(model, tensor_batches(data, 128), verbose=False)
    metrics = pd.read_csv(tmp_path / "t" / "version_0" / "metrics.csv")
    assert set(metrics.columns) == {
        "epoch", "step", "train/loss_step", "train/loss_epoch", "train/accuracy_step",
        "train/accuracy_epoch", "val/loss", "val/accuracy", "test/loss", "test/accuracy",
    }  # fmt: skip
    assert metrics["train/loss_step"].notna().sum() == 8  # 4 batches x 2 epochs
    assert metrics["val/loss"].notna().sum() == 2
    # the one-cycle schedule is stepped per batch: after its 8 steps the rate is far below its peak
    assert trainer.optimizers[0].param_groups[0]["lr"] < 0.1 * 0.005
    assert model.hparams.learning_rate == 0.005 and model.hparams.channels == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0}, "learning_rate must be a finite number above 0"),
        ({"weight_decay": -1}, "weight_decay must be a finite number of 0 or more"),
        ({"channels": -2}, "channels must be a positive integer"),
    ],
)
def test_classifier_bad_arguments(kwargs, message):
    from helpers.models import MNISTClassifier

    with pytest.raises(ValueError, match=message):
        MNISTClassifier(**kwargs)
