"""Behaviour, not plumbing: the real trainer on real images learns, and each recipe part reaches the network.

Real data: scikit-learn's handwritten digits (the package ships them), 600 images at 16 px, 10 classes.
Each test would fail with a trainer that shuffled images apart from their labels, augmented at evaluation,
normalised with the wrong statistics, kept an EMA stuck at its start, or dropped a recipe setting on the way
to the optimizer or the loss.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision.transforms.functional as TF
from torch import nn

from search_spaces import from_block_strings
from training.augment import EvalLoader
from training.data import DataConfig, Split, load_data
from training.recipe import Recipe
from training.trainer import train

DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits", resolution=16, limit=600), seed=0)  # 480 train / 120 val


def small_arch():
    blocks = ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e4_i16_o24", "r2_k3_s22_e4_i24_o40"]
    return from_block_strings(blocks, stem=16, head=128, name="small")


RECIPE = Recipe(epochs=8, batch_size=32, lr=0.1)  # two seeds on this machine: 0.80, 0.81 after 8 epochs


def test_training_learns_and_shuffled_labels_do_not(digits):
    torch.set_num_threads(1)
    learned = train(small_arch(), digits, RECIPE, DEVICE, seed=0).result
    assert learned.accuracy >= 0.7, learned.history  # chance is 0.1
    assert learned.history[-1] > learned.history[0]
    perm = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(0))
    shuffled = replace(digits, train=Split(digits.train.x, digits.train.y[perm]))
    control = train(small_arch(), shuffled, RECIPE, DEVICE, seed=0).result
    assert control.accuracy <= 0.3, control.history  # nothing to learn: near chance on the real labels


def test_evaluation_is_deterministic_and_unaugmented(digits):
    trained = train(small_arch(), digits, replace(RECIPE, epochs=1), DEVICE, seed=0)
    first = trained.evaluate(digits.val)
    assert trained.evaluate(digits.val) == first  # no random flip or crop at evaluation
    assert first[0] == trained.result.accuracy


def test_normalisation_is_the_training_split_statistics_as_torchvision_applies_them(digits):
    x = digits.train.x.float() / 255
    assert digits.mean == pytest.approx(x.mean((0, 2, 3)).tolist(), abs=1e-6)
    assert digits.std == pytest.approx(x.std((0, 2, 3)).tolist(), abs=1e-6)
    xb, yb = next(iter(EvalLoader(digits, digits.val, 50, digits.resolution, 1.0)))
    want = TF.normalize(digits.val.x[:50].float() / 255, list(digits.mean), list(digits.std))
    torch.testing.assert_close(xb, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(yb, digits.val.y[:50])


def test_ema_follows_the_training(digits):
    trained = train(small_arch(), digits, replace(RECIPE, ema_decay=0.9), DEVICE, seed=0)
    ema, raw = trained.model, trained.train_model
    assert ema is not raw
    assert trained.result.accuracy >= 0.6 and len(trained.result.history_raw) == RECIPE.epochs
    assert ema.classifier.weight.abs().sum() > 0  # moved from the zero init
    distance = sum((a - b).abs().sum() for a, b in zip(ema.parameters(), raw.parameters()))
    assert 0 < distance < sum(p.abs().sum() for p in raw.parameters()) * 0.5


def test_recipe_settings_reach_the_optimizer_and_the_loss(digits, monkeypatch: pytest.MonkeyPatch):
    import training.trainer as trainer

    seen: dict[str, object] = {}
    make_optimizer = trainer.make_optimizer

    def spy_optimizer(model: nn.Module, recipe: Recipe, lr: float | None = None) -> torch.optim.Optimizer:
        seen["zero classifier"] = bool((model.classifier.weight == 0).all())
        seen["params"] = {id(p): p for p in model.parameters()}
        opt = make_optimizer(model, recipe, lr)
        seen["groups"] = [(g["weight_decay"], list(g["params"])) for g in opt.param_groups]
        return opt

    cross_entropy = torch.nn.functional.cross_entropy

    def spy_loss(*args, **kwargs):
        seen["label_smoothing"] = kwargs.get("label_smoothing")
        return cross_entropy(*args, **kwargs)

    monkeypatch.setattr(trainer, "make_optimizer", spy_optimizer)
    monkeypatch.setattr(trainer.F, "cross_entropy", spy_loss)
    recipe = replace(RECIPE, epochs=1, weight_decay=3e-4, label_smoothing=0.3)
    train(small_arch(), digits, recipe, DEVICE, seed=0)
    assert seen["zero classifier"] and seen["label_smoothing"] == 0.3
    groups = seen["groups"]
    assert isinstance(groups, list) and sorted(wd for wd, _ in groups) == [0.0, 3e-4]
    for wd, params in groups:  # no decay on BatchNorm and biases (1-d), decay on every weight matrix
        assert all((p.ndim <= 1) == (wd == 0.0) for p in params)
    assert sorted(id(p) for _, ps in groups for p in ps) == sorted(seen["params"])


def test_the_loader_keeps_every_image_with_its_label(digits):
    """Shuffled and batched, without augmentation: every batch image is a training image with its own label."""
    from training.augment import TrainLoader

    plain = replace(digits, flip=False, crop_padding=0)
    loader = TrainLoader(plain, plain.train, replace(RECIPE, batch_size=64), plain.resolution,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    label_of = {bytes(img.numpy()): int(y) for img, y in zip(plain.train.x, plain.train.y)}
    mean = torch.tensor(plain.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(plain.std).view(1, 3, 1, 1) * 255
    seen = 0
    for x, y in loader:
        raw = (x * std + mean).round().clamp(0, 255).to(torch.uint8)
        assert [label_of[bytes(img.numpy())] for img in raw] == y.tolist()
        seen += len(y)
    assert seen >= len(plain.train) - 64  # an epoch (the last partial batch may be dropped)


@pytest.mark.parametrize("drop_path", [0.5, 0.0])
def test_drop_path_is_active_in_training_and_off_in_evaluation(digits, drop_path: float):
    """The recipe's drop path reaches the trained network's blocks: a training-mode forward of the same batch
    varies with it (and only with it: dropout 0, and the control without drop path does not vary)."""
    trained = train(small_arch(), digits, replace(RECIPE, epochs=1, dropout=0.0, drop_path=drop_path), DEVICE, seed=0)
    net = trained.train_model
    x = (digits.val.x[:32].float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        net.train()
        varies = not torch.equal(net(x), net(x))
        net.eval()
        assert torch.equal(net(x), net(x))
    assert varies == (drop_path > 0)


def _batches_the_trainer_sees(data, recipe: Recipe, monkeypatch: pytest.MonkeyPatch) -> list:
    """Train one epoch; return the (images as 0..255 uint8, labels) of every batch the trainer's own loader
    gave it (the loader class is wrapped, not replaced: the trainer builds it with its own arguments)."""
    import training.trainer as trainer
    from training.augment import TrainLoader

    seen = []
    mean = torch.tensor(data.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(data.std).view(1, 3, 1, 1) * 255

    class Recording(TrainLoader):
        def __iter__(self):
            for x, y in super().__iter__():
                seen.append(((x * std + mean).round().clamp(0, 255).to(torch.uint8), y.clone()))
                yield x, y

    monkeypatch.setattr(trainer, "TrainLoader", Recording)
    train(small_arch(), data, replace(recipe, epochs=1, batch_size=64), DEVICE, seed=0)
    return seen


def test_flip_through_the_trainer_mirrors_some_images_and_changes_nothing_else(digits, monkeypatch):
    data = replace(digits, flip=True, crop_padding=0)
    by_image = {bytes(img.numpy()): int(y) for img, y in zip(data.train.x, data.train.y)}
    kinds = set()
    for x, y in _batches_the_trainer_sees(data, RECIPE, monkeypatch):
        for img, label in zip(x, y.tolist()):
            if bytes(img.numpy()) in by_image:
                kinds.add("as is")
                assert by_image[bytes(img.numpy())] == label
            else:  # otherwise it must be a training image mirrored left-right, with its own label
                assert by_image[bytes(img.flip(-1).numpy())] == label
                kinds.add("mirrored")
    assert kinds == {"as is", "mirrored"}


def test_pad_and_crop_through_the_trainer_shifts_images_by_at_most_the_padding(digits, monkeypatch):
    pad = 2
    data = replace(digits, flip=False, crop_padding=pad)
    source = data.train.x
    shifts = set()
    for x, _ in _batches_the_trainer_sees(data, RECIPE, monkeypatch)[:2]:
        for img in x:
            inner = img[:, pad:-pad, pad:-pad]  # the part that comes from the image whatever the shift
            window = lambda dy, dx: source[:, :, pad + dy : 16 - pad + dy, pad + dx : 16 - pad + dx]  # noqa: E731
            found = {(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)
                     if (window(dy, dx) == inner).all((1, 2, 3)).any()}  # fmt: skip
            assert found, "an image that is no shifted training image"
            shifts |= found
    assert (0, 0) in shifts and len(shifts) > 5  # shifted in several ways, sometimes not at all


def test_randaugment_through_the_trainer_changes_images_not_labels_or_order(digits, monkeypatch):
    """Same seed with and without the policy: the same images in the same order (the crop and flip draws do
    not depend on it) with the same labels; the policy changed most images."""
    plain = _batches_the_trainer_sees(digits, RECIPE, monkeypatch)
    augmented = _batches_the_trainer_sees(digits, replace(RECIPE, augment="randaugment"), monkeypatch)
    assert len(plain) == len(augmented)
    changed = 0
    for (xp, yp), (xa, ya) in zip(plain, augmented):
        assert torch.equal(yp, ya)
        changed += int((xp != xa).flatten(1).any(1).sum())
    assert changed > 0.5 * sum(len(y) for _, y in plain)
