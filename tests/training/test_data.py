import numpy as np
import pytest
import torch

from tests.conftest import CIFAR_TEST
from training.data import DeviceLoader, load_data, stratified_split

DIGITS = {"name": "digits", "resolution": 32, "flip": False, "crop_padding": 2, "val_fraction": 0.2}


def test_stratified_split_is_seeded_and_disjoint():
    y = np.repeat(np.arange(10), 50)
    a_tr, a_va = stratified_split(y, 0.2, seed=1)
    b_tr, b_va = stratified_split(y, 0.2, seed=1)
    assert (a_tr == b_tr).all() and (a_va == b_va).all()
    assert not set(a_tr) & set(a_va)
    assert len(a_va) == 100
    assert np.bincount(y[a_va]).tolist() == [10] * 10


def test_digits_default_data():
    d = load_data(DIGITS, seed=0)
    assert d.num_classes == 10
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape[1:] == (3, 32, 32)
    assert len(d.train) + len(d.val) == 1797
    assert d.test is None


def test_npz_real_cifar(cifar_train):
    d = load_data({"name": "npz", "path": str(cifar_train), "test_path": str(CIFAR_TEST), "limit": 1000}, seed=0)
    assert len(d.train) + len(d.val) == 1000
    assert d.num_classes == 10
    assert d.test is not None and len(d.test) == 2000
    # channel means of the JPEG copy (README: 0.4913 / 0.4821 / 0.4465 on the full file)
    assert d.mean == pytest.approx((0.4913, 0.4821, 0.4465), abs=0.02)


def test_npz_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_data({"name": "npz", "path": str(tmp_path / "nope.npz")})
    with pytest.raises(ValueError, match="needs data.path"):
        load_data({"name": "npz", "path": None})
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="'x' and 'y'"):
        load_data({"name": "npz", "path": str(bad)})
    with pytest.raises(ValueError, match="unknown data set"):
        load_data({"name": "mnist"})


def test_imagefolder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    d = load_data({"name": "imagefolder", "root": str(tmp_path), "resolution": 24, "workers": 0, "val_fraction": 0.5})
    assert d.num_classes == 2 and d.train.x.shape[1:] == (3, 24, 24) and len(d.val) == 6


def test_device_loader_augments_on_device():
    d = load_data({**DIGITS, "flip": True}, seed=0)
    g = torch.Generator().manual_seed(0)
    batches = list(DeviceLoader(d, d.train, 64, train=True, generator=g))
    assert len(batches) == len(d.train) // 64
    x, y = batches[0]
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    evalb = list(DeviceLoader(d, d.val, 100, train=False))
    assert sum(len(b[1]) for b in evalb) == len(d.val)
    # normalised with train statistics
    allx = torch.cat([b[0] for b in evalb])
    assert abs(allx.mean().item()) < 0.2
