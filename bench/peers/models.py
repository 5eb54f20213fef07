"""PyTorch builds of regain's benchmark networks (docs: benchmark-models.md).

Tooling only: the golden-data generator (tools/golden/gen_golden.py) and the
PyTorch training peer (bench/peers/train_torch.py) import this module. Run it
directly to print and check the parameter / MAC counts:

    /usr/bin/python3 bench/peers/models.py

The module tree is laid out so that PyTorch's own parameter names ARE the
regain names ("stem.weight", "stem.bn.weight", "b2.expand.weight",
"l2.0.down.bn.running_var", "fc.bias", ...). The only difference is layout:
regain stores convolution weights OHWI [Cout, KH, KW, Cin/groups], PyTorch
OIHW; to_regain_layout() / from_regain_layout() convert.

Networks (input NCHW [N,1,28,28] here; NHWC [N,28,28,1] on the C side):
  mbv2-tiny    132,938 params    8,762,976 MACs/image
  resnet20     272,186 params   31,021,952 MACs/image
  resnet20-w2  1,084,010 params 123,860,736 MACs/image
"""

import collections

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1

# name -> (trainable params, forward MACs per image), from benchmark-models.md
EXPECTED_COUNTS = {
    "mbv2-tiny": (132_938, 8_762_976),
    "resnet20": (272_186, 31_021_952),
    "resnet20-w2": (1_084_010, 123_860_736),
}


# ---------------------------------------------------------------- layers ---

class ConvBN(nn.Module):
    """Convolution without bias followed by BatchNorm2d (and an optional
    activation). Holds the conv weight directly as `.weight` (OIHW) and the
    BN as `.bn`, so the names come out as "<prefix>.weight",
    "<prefix>.bn.weight", "<prefix>.bn.bias", "<prefix>.bn.running_mean",
    "<prefix>.bn.running_var". Padding is k // 2."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=None):
        super().__init__()
        assert cin % groups == 0 and cout % groups == 0
        self.cin, self.cout, self.k = cin, cout, k
        self.stride, self.groups = stride, groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, k, k))
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        assert act in (None, "relu", "relu6")
        self.act = act

    def conv(self, x):
        return F.conv2d(x, self.weight, None, self.stride, self.k // 2,
                        1, self.groups)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if self.act == "relu":
            y = F.relu(y)
        elif self.act == "relu6":
            y = F.relu6(y)
        return y

    def extra_repr(self):
        return (f"{self.cin}, {self.cout}, k={self.k}, s={self.stride}, "
                f"groups={self.groups}, act={self.act}")


# ------------------------------------------------------------- mbv2-tiny ---

class InvertedResidual(nn.Module):
    """IR t, c, s with input channels cin:
    t > 1: expand pw (cin*t) + BN + ReLU6; dw 3x3 s + BN + ReLU6; project pw c + BN
    t = 1: dw 3x3 s + BN + ReLU6; project pw c + BN
    residual add iff s == 1 and cin == c."""

    def __init__(self, cin, t, c, s):
        super().__init__()
        hidden = cin * t
        self.expand = ConvBN(cin, hidden, 1, act="relu6") if t > 1 else None
        self.dw = ConvBN(hidden, hidden, 3, stride=s, groups=hidden, act="relu6")
        self.project = ConvBN(hidden, c, 1, act=None)
        self.residual = (s == 1 and cin == c)

    def forward(self, x):
        y = x
        if self.expand is not None:
            y = self.expand(y)
        y = self.project(self.dw(y))
        return x + y if self.residual else y


# (t, c, s) for b1..b7
MBV2_TINY_BLOCKS = [
    (1, 16, 1),
    (4, 24, 2),
    (4, 24, 1),
    (4, 40, 2),
    (4, 40, 1),
    (4, 80, 1),
    (4, 80, 1),
]


class MBV2Tiny(nn.Module):
    def __init__(self, num_classes=10, in_ch=1):
        super().__init__()
        self.stem = ConvBN(in_ch, 16, 3, act="relu6")
        cin = 16
        for i, (t, c, s) in enumerate(MBV2_TINY_BLOCKS, start=1):
            setattr(self, f"b{i}", InvertedResidual(cin, t, c, s))
            cin = c
        self.head = ConvBN(cin, 256, 1, act="relu6")
        self.fc = nn.Linear(256, num_classes)
        self.nblocks = len(MBV2_TINY_BLOCKS)

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, self.nblocks + 1):
            x = getattr(self, f"b{i}")(x)
        x = self.head(x)
        x = x.mean(dim=(2, 3))
        return self.fc(x)


# -------------------------------------------------------------- resnet20 ---

class BasicBlock(nn.Module):
    """conv1 3x3 c s + BN + ReLU; conv2 3x3 c + BN; + shortcut; ReLU.
    Shortcut: identity, or (option B) down = pw c stride s + BN where the
    shape changes."""

    def __init__(self, cin, c, s):
        super().__init__()
        self.conv1 = ConvBN(cin, c, 3, stride=s, act="relu")
        self.conv2 = ConvBN(c, c, 3, act=None)
        self.down = ConvBN(cin, c, 1, stride=s) if (s != 1 or cin != c) else None

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        sc = x if self.down is None else self.down(x)
        return F.relu(y + sc)


class ResNet20(nn.Module):
    def __init__(self, widths=(16, 32, 64), num_classes=10, in_ch=1):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = ConvBN(in_ch, w1, 3, act="relu")
        cin = w1
        for si, (w, s) in enumerate(((w1, 1), (w2, 2), (w3, 2)), start=1):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(cin, w, s if b == 0 else 1))
                cin = w
            setattr(self, f"l{si}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.l3(self.l2(self.l1(x)))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


# ---------------------------------------------------------------- public ---

MODEL_NAMES = ("mbv2-tiny", "resnet20", "resnet20-w2")


def init_weights(model):
    """The initialization regain uses too: conv weights
    kaiming_normal_(mode='fan_out', nonlinearity='relu') -- i.e. N(0, std)
    with std = sqrt(2 / (Cout*KH*KW)); note PyTorch's fan_out does NOT divide
    by groups, so a depthwise [C,1,3,3] weight gets std sqrt(2/(9C)) --
    BN weight 1 / bias 0, linear weight N(0, 0.01), linear bias 0.
    Draws from the global torch RNG in module-registration order."""
    for m in model.modules():
        if isinstance(m, ConvBN):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return model


def build_model(name, num_classes=10, init=True):
    """Build one of MODEL_NAMES (float32, train mode), initialized with
    init_weights() unless init=False."""
    if name == "mbv2-tiny":
        m = MBV2Tiny(num_classes)
    elif name == "resnet20":
        m = ResNet20((16, 32, 64), num_classes)
    elif name == "resnet20-w2":
        m = ResNet20((32, 64, 128), num_classes)
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
    return init_weights(m) if init else m


def to_regain_layout(t):
    """PyTorch layout -> regain layout. 4-D conv weights OIHW -> OHWI
    (permute(0,2,3,1)); everything else unchanged. Returns a contiguous
    tensor (a copy when permuted)."""
    if t.dim() == 4:
        return t.permute(0, 2, 3, 1).contiguous()
    return t


def from_regain_layout(t):
    """Inverse of to_regain_layout: 4-D OHWI -> OIHW."""
    if t.dim() == 4:
        return t.permute(0, 3, 1, 2).contiguous()
    return t


def regain_parameters(model):
    """Ordered mapping regain parameter name -> the model's nn.Parameter
    (PyTorch layout; apply to_regain_layout() to the tensor, or to its .grad,
    for the regain layout). Order is module-registration order, which is
    forward order: for each conv "<p>.weight", "<p>.bn.weight", "<p>.bn.bias";
    "fc.weight", "fc.bias" last."""
    return collections.OrderedDict(model.named_parameters())


def regain_buffers(model):
    """Ordered mapping regain buffer name -> tensor: every BN's
    "<p>.bn.running_mean" and "<p>.bn.running_var" (num_batches_tracked,
    which regain does not keep, is left out)."""
    return collections.OrderedDict(
        (n, b) for n, b in model.named_buffers()
        if not n.endswith("num_batches_tracked"))


def regain_state(model):
    """Ordered mapping name -> detached tensor in regain layout, parameters
    then buffers."""
    out = collections.OrderedDict()
    for n, p in regain_parameters(model).items():
        out[n] = to_regain_layout(p.detach())
    for n, b in regain_buffers(model).items():
        out[n] = b.detach().clone()
    return out


def count_params_macs(model, input_hw=(28, 28), in_ch=1):
    """(trainable parameters, forward multiply-accumulates per image).
    MACs count convolutions (Hout*Wout*Cout*(Cin/groups)*KH*KW) and linear
    layers (in*out) only; BN, activations, adds and pooling are free.
    Shapes come from one forward of a single zero image in eval mode (the
    model's mode is restored afterwards)."""
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = [0]
    hooks = []

    def conv_hook(mod, inp, out):
        _, cout, ho, wo = out.shape
        macs[0] += ho * wo * cout * (mod.cin // mod.groups) * mod.k * mod.k

    def fc_hook(mod, inp, out):
        macs[0] += mod.in_features * mod.out_features

    for m in model.modules():
        if isinstance(m, ConvBN):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(fc_hook))
    was_training = model.training
    model.eval()
    try:
        p0 = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, in_ch, *input_hw, dtype=p0.dtype, device=p0.device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return params, macs[0]


def check_counts(name, model=None):
    """Assert the model's counts equal benchmark-models.md; returns them."""
    if model is None:
        model = build_model(name, init=False)
    got = count_params_macs(model)
    want = EXPECTED_COUNTS[name]
    assert got == want, f"{name}: counts {got} != table {want}"
    return got


if __name__ == "__main__":
    for name in MODEL_NAMES:
        m = build_model(name)
        p, macs = check_counts(name, m)
        nparams = len(regain_parameters(m))
        nbufs = len(regain_buffers(m))
        print(f"{name:12s} params {p:>10,d}  MACs {macs:>12,d}  "
              f"({nparams} parameter tensors, {nbufs} buffers)  OK")
