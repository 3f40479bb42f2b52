"""Official DMFuse (Zhishe-Wang/DMFuse): ``Net.net``'s test path (six ``get_feats`` of the SR3
``GaussianDiffusion`` at t = 5, 50, 100, the fusion blocks and the decoder), on 3-channel [-1, 1]
inputs padded white to multiples of 32 as its loader does. Random weights: the UNet weights are
not public, and timing does not depend on them. The official code has no DDPM training script and
its ``train.py`` does not run, so there is no official training step to time."""

import sys
import types

import numpy as np

from jaxfuse.official import OfficialError, nchw, official_imports, torch_cpu

UNET = dict(in_channel=3, out_channel=3, norm_groups=32, inner_channel=32, channel_mults=[1, 2, 4, 8, 8],
            attn_res=[16], res_blocks=2, dropout=0.2, image_size=256)
SCHEDULE = {"schedule": "cosine", "n_timestep": 2000, "linear_start": 1e-6, "linear_end": 1e-2}
NOT_TRAINABLE = "the official code has no DDPM training script and its train.py does not run"


def load(repo):
    torch = torch_cpu()
    stubs = {"torchsummary": {"summary": None}, "thop": {"profile": None, "clever_format": None}}
    with official_imports(repo, "Net.py", stubs):
        from model.sr3_modules.diffusion import GaussianDiffusion
        from model.sr3_modules.unet import UNet
        diffusion = GaussianDiffusion(UNet(**UNET), image_size=256, channels=3, loss_type="l2", conditional=False)
        diffusion.set_new_noise_schedule(SCHEDULE, "cpu")
        diffusion.eval()
        # Net.py builds its diffusion model through the repo's option parser and model factory at
        # import time; hand it the one built above instead, with an empty command line.
        saved = {name: sys.modules.get(name) for name in ("model", "logger")}
        sys.modules["model"] = types.SimpleNamespace(create_model=lambda opt: _Features(diffusion))
        sys.modules["logger"] = types.SimpleNamespace(
            parse=lambda args: {"model": {"beta_schedule": {"train": None}}, "phase": "train"},
            dict_to_nonedict=lambda opt: opt)
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            import Net
        finally:
            sys.argv = argv
            for name, module in saved.items():
                sys.modules.pop(name, None) if module is None else sys.modules.__setitem__(name, module)
    return _Official(torch, Net.net().eval())


class _Features:
    """What Net.py needs of the official model wrapper: ``get_feats`` and a no-op schedule setter."""

    def __init__(self, diffusion):
        self.diffusion = diffusion

    def set_new_noise_schedule(self, *args, **kwargs):
        pass

    def get_feats(self, x, t):
        return self.diffusion.feats(x, t)


class _Official:
    def __init__(self, torch, net):
        self.torch, self.net = torch, net

    def infer(self, ir, vi):
        torch, net = self.torch, self.net
        h, w = ir.shape[1:3]
        pad = ((0, 0), (0, -h % 32), (0, -w % 32), (0, 0))
        to_input = lambda x: nchw(torch, np.repeat(np.pad(x, pad, constant_values=1.0), 3, axis=-1), 2.0, -1.0)
        pairs = [(to_input(ir[i:i + 1]), to_input(vi[i:i + 1])) for i in range(len(ir))]

        def run():
            with torch.no_grad():
                for a, b in pairs:
                    f = net.encoder(a, b)
                    out = net.decoder(*(net.fusion(f[i], f[i + 5]) for i in range(5)))
            return out
        return run

    def train(self, ir, vi, stage=None):
        raise OfficialError(NOT_TRAINABLE)
