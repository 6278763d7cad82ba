"""Data for proxy training: load, split (seeded, stratified), and keep on device.

Small data sets (digits, npz arrays, CIFAR-10) live on the training device as
uint8 tensors; batches are cropped, flipped and normalised there, so a GPU is
never starved by a CPU loader. ImageFolder data (ImageNet layout) is decoded
by a DataLoader with workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effnas.config import one_of, typed
from effnas.errors import UserError

DATASETS = ("digits", "npz", "cifar10", "imagefolder")


@dataclass
class Split:
    x: torch.Tensor  # uint8 (N, 3, H, W)
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))


@dataclass
class Data:
    name: str
    train: Split
    val: Split
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resolution: int
    flip: bool
    crop_padding: int
    test: Split | None = None

    def to(self, device: torch.device | str) -> Data:
        return Data(
            self.name,
            self.train.to(device),
            self.val.to(device),
            self.num_classes,
            self.mean,
            self.std,
            self.resolution,
            self.flip,
            self.crop_padding,
            self.test.to(device) if self.test is not None else None,
        )


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `val_fraction` of every class goes to val, seeded."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def _to_split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y.astype(np.int64)))


def resize_split(split: Split, resolution: int) -> Split:
    if split.x.shape[-1] == resolution and split.x.shape[-2] == resolution:
        return split
    x = F.interpolate(split.x.float(), size=(resolution, resolution), mode="bilinear", align_corners=False)
    return Split(x.round().clamp(0, 255).to(torch.uint8), split.y)


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    xf = x.float() / 255.0
    m, s = xf.mean((0, 2, 3)).tolist(), xf.std((0, 2, 3)).clamp_min(1e-3).tolist()
    return (m[0], m[1], m[2]), (s[0], s[1], s[2])


def _load_arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(x_train, y_train, x_test, y_test) as NHWC uint8 / int labels."""
    name = cfg.name
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = np.repeat((d.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None], 3, axis=-1)
        return x, d.target, None, None
    if name == "npz":
        assert cfg.path is not None  # DataConfig checked it
        x, y = _read_npz(cfg.path)
        if cfg.test_path:
            tx, ty = _read_npz(cfg.test_path)
            return x, y, tx, ty
        return x, y, None, None
    if name == "cifar10":
        from torchvision.datasets import CIFAR10

        root = cfg.root or os.path.expanduser("~/.cache/effnas/cifar10")
        try:
            tr = CIFAR10(root, train=True, download=cfg.download)
            te = CIFAR10(root, train=False, download=cfg.download)
        except Exception as e:  # no network, bad root
            raise UserError(f"cannot load CIFAR-10 from {root}: {e}") from None
        return tr.data, np.array(tr.targets), te.data, np.array(te.targets)
    if name == "imagefolder":
        x, y = _decode_imagefolder(cfg)
        return x, y, None, None
    raise UserError(f"unknown data set {name!r}; expected one of {DATASETS}")


def _decode_imagefolder(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet-layout folder (root/class/image.jpg), decoded by a DataLoader with
    workers, resized (shorter side) and centre-cropped to data.resolution."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    root = str(cfg.root)
    res = cfg.resolution or 64
    tf = transforms.Compose([transforms.Resize(res), transforms.CenterCrop(res), transforms.PILToTensor()])
    ds = datasets.ImageFolder(root, transform=tf)
    loader = DataLoader(ds, batch_size=256, num_workers=cfg.workers)
    xs, ys = zip(*((x.permute(0, 2, 3, 1).numpy(), y.numpy()) for x, y in loader))
    return np.concatenate(xs), np.concatenate(ys)


@dataclass(frozen=True)
class DataConfig:
    """A data set (`data=NAME` in the configs, effnas/conf/data/*.yaml set what differs from these)."""

    name: str = "digits"
    """digits (scikit-learn's, offline) | npz | cifar10 | imagefolder."""
    path: str | None = None
    """npz: the .npz file with arrays x (N,H,W,3 uint8) and y (N,)."""
    test_path: str | None = None
    """npz: an optional held-out file for final reporting (never used by a search)."""
    root: str | None = None
    """cifar10: download folder (default ~/.cache/effnas/cifar10); imagefolder: DIR/CLASS/IMAGE."""
    download: bool = False
    resolution: int | None = 32
    """Images are resized to this size (null: the arrays' own)."""
    val_fraction: float = 0.2
    """Share of every class carved out of the training split for validation (seeded)."""
    limit: int | None = None
    """Stratified subset of this many images (before the split)."""
    flip: bool = True
    crop_padding: int = 4
    workers: int = 4
    """DataLoader workers that decode an imagefolder."""

    def __post_init__(self) -> None:
        one_of("data.name", self.name, DATASETS, "data set")
        if self.name == "npz" and not self.path:
            raise UserError("data=npz needs data.path=FILE.npz (arrays x: N,H,W,3 uint8 and y)")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.limit is not None and self.limit < 2:
            raise UserError(f"data.limit must be >= 2 or null, got {self.limit}")
        if self.resolution is not None and self.resolution < 8:
            raise UserError(f"data.resolution must be >= 8 pixels or null, got {self.resolution}")
        if self.crop_padding < 0 or self.workers < 0:
            raise UserError("data.crop_padding and data.workers must be >= 0")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> DataConfig:
        return typed(cls, d, "data")

    def check_files(self) -> None:
        """The files and folders exist (checked when data is about to be loaded, not when a run is read)."""
        for key in ("path", "test_path"):
            value = getattr(self, key)
            if value and not os.path.isfile(value):
                what = "is a directory, not a file" if os.path.isdir(value) else "does not exist"
                raise UserError(f"data.{key} {value} {what}")
        if self.name == "imagefolder" and not (self.root and os.path.isdir(self.root)):
            raise UserError(f"data=imagefolder needs data.root=DIR with one folder per class; {self.root!r} is not")


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise UserError(f"{path} must hold arrays 'x' and 'y', has {sorted(z.files)}")
            x, y = z["x"], z["y"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path} is not a readable .npz file ({type(e).__name__})") from None
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise UserError(f"{path}: x must be uint8 (N,H,W,3), got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{path}: y must hold one label per image: x has {len(x)} images, y has shape {y.shape}")
    return x, y


def check_labels(y: np.ndarray, what: str) -> int:
    """The number of classes; UserError unless labels are integers 0..C-1 with at least 2 classes."""
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{what}: labels must be integers, got {y.dtype}")
    if len(y) == 0 or int(y.min()) < 0:
        raise UserError(f"{what}: labels must be 0..C-1 (found {int(y.min()) if len(y) else 'none'})")
    present = np.unique(y)
    if len(present) < 2:
        raise UserError(f"{what}: needs at least 2 classes, found {len(present)}")
    if int(present[-1]) + 1 > 2 * len(present):
        raise UserError(
            f"{what}: labels run up to {int(present[-1])} but only {len(present)} classes occur; relabel them 0..C-1"
        )
    return int(present[-1]) + 1


def load_data(cfg: DataConfig | Mapping[str, Any], seed: int = 0) -> Data:
    """Load a data set config (effnas/conf/data/*.yaml) into a seeded train/val split.

    The validation split is carved from the *train* split; a test split is
    kept apart and never seen by the search.
    """
    if not isinstance(cfg, DataConfig):
        cfg = DataConfig.from_mapping(cfg)
    cfg.check_files()
    x, y, tx, ty = _load_arrays(cfg)
    what = cfg.path or cfg.name
    num_classes = check_labels(y, what)
    if ty is not None:
        num_classes = max(num_classes, check_labels(ty, cfg.test_path or "test split"))
    if cfg.limit and cfg.limit < len(y):
        _, keep = stratified_split(y, cfg.limit / len(y), seed)
        x, y = x[keep], y[keep]
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if smallest < 2:
        raise UserError(f"{what}: every class needs at least 2 images for the train/val split (smallest has 1)")
    tr_idx, va_idx = stratified_split(y, cfg.val_fraction, seed)
    res = cfg.resolution or int(x.shape[1])
    if cfg.crop_padding >= res:
        raise UserError(f"data.crop_padding {cfg.crop_padding} must be smaller than the image size {res}")
    train = resize_split(_to_split(x[tr_idx], y[tr_idx]), res)
    val = resize_split(_to_split(x[va_idx], y[va_idx]), res)
    test = resize_split(_to_split(tx, ty), res) if tx is not None and ty is not None else None
    mean, std = _channel_stats(train.x)
    return Data(
        name=cfg.name,
        train=train,
        val=val,
        num_classes=num_classes,
        mean=mean,
        std=std,
        resolution=res,
        flip=cfg.flip,
        crop_padding=cfg.crop_padding,
        test=test,
    )


class DeviceLoader:
    """Batches from an on-device Split: shuffle, random crop + flip, normalise, all on device."""

    def __init__(
        self,
        data: Data,
        split: Split,
        batch_size: int,
        train: bool,
        channels_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data, self.split, self.batch_size, self.train = data, split, batch_size, train
        self.channels_last, self.generator = channels_last, generator
        dev = split.x.device
        self.mean = torch.tensor(data.mean, device=dev).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(data.std, device=dev).view(1, 3, 1, 1) * 255.0

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.train and n >= self.batch_size else -(-n // self.batch_size)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.data.crop_padding
        if p > 0:
            x = F.pad(x, (p, p, p, p), mode="reflect")
            g, dev = self.generator, x.device
            ox = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=g)
            oy = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=g)
            rows = (oy[:, None] + torch.arange(h, device=dev)[None]).view(n, 1, h, 1)
            cols = (ox[:, None] + torch.arange(w, device=dev)[None]).view(n, 1, 1, w)
            x = x.gather(2, rows.expand(n, 3, h, w + 2 * p)).gather(3, cols.expand(n, 3, h, w))
        if self.data.flip:
            flip = torch.rand(n, device=x.device, generator=self.generator) < 0.5
            x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        return x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split)
        dev = self.split.x.device
        order = torch.randperm(n, device=dev, generator=self.generator) if self.train else torch.arange(n, device=dev)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.split.x[idx].float()
            if self.train:
                x = self._augment(x)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.split.y[idx]
