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
