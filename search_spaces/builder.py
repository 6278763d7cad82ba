"""The one PyTorch builder: `build(arch) -> nn.Module`.

Module and parameter order follow timm's EfficientNet (stem conv, stem BN,
blocks, head conv, head BN, classifier; inside blocks timm's attribute order),
so a timm checkpoint of the same network loads by position.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from effnas.errors import UserError
from search_spaces.arch import Arch
from search_spaces.plan import BlockSpec, block_specs


def _act(name: str) -> nn.Module:
    return nn.SiLU(inplace=True) if name == "silu" else nn.ReLU(inplace=True)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)  # scale the per-sample mask, not the whole tensor


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = _act(act)
        self.conv_expand = nn.Conv2d(squeeze, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return x * s.sigmoid()


class Block(nn.Module):
    """MBConv, depthwise-separable or regular-conv block from one BlockSpec."""

    def __init__(self, spec: BlockSpec, act: str, bn_eps: float, bn_momentum: float) -> None:
        super().__init__()
        self.spec = spec

        def bn(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, eps=bn_eps, momentum=bn_momentum)

        s, k, mid = spec.stride, spec.kernel, spec.mid_channels
        se = SqueezeExcite(mid, spec.se_channels, act) if spec.se_channels else nn.Identity()
        layers: list[tuple[str, nn.Module]]
        if spec.block == "mbconv":
            layers = [
                ("conv_pw", _conv(spec.in_channels, mid, 1)), ("bn1", bn(mid)), ("act1", _act(act)),
                ("conv_dw", _conv(mid, mid, k, s, groups=mid)), ("bn2", bn(mid)), ("act2", _act(act)),
                ("se", se),
                ("conv_pwl", _conv(mid, spec.out_channels, 1)), ("bn3", bn(spec.out_channels)),
            ]  # fmt: skip
        elif spec.block == "ds":
            layers = [
                ("conv_dw", _conv(mid, mid, k, s, groups=mid)), ("bn1", bn(mid)), ("act1", _act(act)),
                ("se", se),
                ("conv_pw", _conv(mid, spec.out_channels, 1)), ("bn2", bn(spec.out_channels)),
            ]  # fmt: skip
        else:
            layers = [
                ("conv", _conv(spec.in_channels, mid, k, s)), ("bn1", bn(mid)), ("act1", _act(act)),
                ("se", se),
            ]  # fmt: skip
        for name, m in layers:
            self.add_module(name, m)
        self._order = [name for name, _ in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for name in self._order:
            y = getattr(self, name)(y)
        spec = self.spec
        if spec.shortcut == "none":
            return y
        y = drop_path(y, spec.drop_path, self.training)
        if spec.shortcut == "pool":
            return y + pool_shortcut(x, spec.stride, spec.out_channels)
        return y + x


def pool_shortcut(x: torch.Tensor, stride: int, out_channels: int) -> torch.Tensor:
    """The parameter-free pooling skip (see SKIP_TYPES in arch.py)."""
    if stride > 1:
        x = F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)
    c = x.shape[1]
    if c > out_channels:
        return x[:, :out_channels]
    if c < out_channels:
        return F.pad(x, (0, 0, 0, 0, 0, out_channels - c))
    return x


def reduce_strides(specs: list[BlockSpec], n: int) -> tuple[int, list[BlockSpec]]:
    """(stem stride, specs) with the first `n` stride-2 layers, the stem first, at stride 1. Shortcuts stay
    as the architecture defines them (a block that had none still has none), so parameters are unchanged."""
    out, left = [], n - 1
    for spec in specs:
        if spec.stride > 1 and left > 0:
            spec, left = replace(spec, stride=1), left - 1
        out.append(spec)
    return (1 if n >= 1 else 2), out


class Net(nn.Module):
    def __init__(self, arch: Arch, num_classes: int = 1000, stride_reduction: int = 0) -> None:
        super().__init__()
        self.arch = arch
        eps, mom = arch.bn_eps, arch.bn_momentum
        stem_stride, specs = reduce_strides(block_specs(arch), stride_reduction)
        self.conv_stem = _conv(3, arch.stem, 3, stem_stride)
        self.bn1 = nn.BatchNorm2d(arch.stem, eps=eps, momentum=mom)
        self.act1 = _act(arch.activation)
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(*(Block(b, arch.activation, eps, mom) for b in specs if b.stage == i))
                for i in range(len(arch.stages))
            )
        )
        if arch.head > 0:
            self.conv_head: nn.Module = _conv(arch.stages[-1].out_channels, arch.head, 1)
            self.bn2: nn.Module = nn.BatchNorm2d(arch.head, eps=eps, momentum=mom)
            self.act2: nn.Module = _act(arch.activation)
        else:
            self.conv_head = self.bn2 = self.act2 = nn.Identity()
        self.dropout = nn.Dropout(arch.dropout)
        self.classifier = nn.Linear(arch.features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # TF/timm EfficientNet init: fan-out normal for convs, uniform for the classifier.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / m.out_features**0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv_stem(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.bn2(self.conv_head(self.blocks(self.forward_stem(x)))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """From the last block's output to the logits (the latency tables time the stem, each block and this)."""
        x = self.act2(self.bn2(self.conv_head(x))).mean((2, 3))
        return self.classifier(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.blocks(self.forward_stem(x)))


def build(arch: Arch, num_classes: int = 1000, stride_reduction: int = 0) -> Net:
    """Turn an `Arch` into a PyTorch module (the only place this happens).

    `stride_reduction` > 0 is for proxy training on small images only (see `reduce_strides`)."""
    if not isinstance(arch, Arch):
        raise TypeError(f"build() needs an Arch, got {type(arch).__name__}")
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    return Net(arch, num_classes, stride_reduction)
