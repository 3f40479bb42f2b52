"""Official CrossFuse (hli1221/CrossFuse): the two ``Auto_Encoder_single`` and the
``Trans_FuseNet`` of ``test_image.py`` (``args_trans.py`` settings) on 0-255 inputs, and the
stage-2 step of ``train_conv_trans.py`` (frozen auto-encoders, ``train_module``'s loss, Adam 1e-3
with weight decay 0.9). The official test path takes one image per call: a batch is that many calls."""

from jaxfuse.official import OfficialError, nchw, official_imports, torch_cpu

AUTO = dict(in_channels=1, out_channels=1, en_out_channels1=32, en_out_channels=64, num_layers=3,
            dense_out=128, part_out=128)
TRANS = dict(en_out_channels1=32, out_channels=1, part_out=128, img_size=32, patch_size=2, depth_self=1,
             depth_cross=1, n_heads=16, qkv_bias=True, mlp_ratio=4, p=0., attn_p=0.)


def load(repo):
    torch = torch_cpu()
    stubs = {"timm": {}, "timm.models": {}, "seaborn": {}, "timm.models.layers": {
        "DropPath": torch.nn.Identity, "to_2tuple": lambda x: (x, x),
        "trunc_normal_": lambda t, std=1.0: torch.nn.init.trunc_normal_(t, std=std)}}
    with official_imports(repo, "network/net_conv_trans.py", stubs):
        from network.loss import Gradient_loss, Order_loss
        from network.net_autoencoder import Auto_Encoder_single
        from network.net_conv_trans import Trans_FuseNet
    ae_ir = Auto_Encoder_single(**AUTO, train_flag=False).eval()
    ae_vi = Auto_Encoder_single(**AUTO, train_flag=False).eval()
    return _Official(torch, ae_ir, ae_vi, Trans_FuseNet, (Gradient_loss(1), Order_loss(1)))


class _Official:
    def __init__(self, torch, ae_ir, ae_vi, fusion_net, losses):
        self.torch, self.ae_ir, self.ae_vi, self.fusion_net, self.losses = torch, ae_ir, ae_vi, fusion_net, losses

    def infer(self, ir, vi):
        torch = self.torch
        pairs = [(nchw(torch, ir[i:i + 1], 255.0), nchw(torch, vi[i:i + 1], 255.0)) for i in range(len(ir))]
        net = self.fusion_net(**TRANS, train_flag=False).eval()

        def run():
            with torch.no_grad():
                for a, b in pairs:
                    ir_sh, ir_de = self.ae_ir(a)
                    vi_sh, vi_de = self.ae_vi(b)
                    out = net(ir_de, ir_sh, vi_de, vi_sh, True)["out"]
            return out
        return run

    def train(self, ir, vi, stage=None):
        if stage not in (None, "fusion"):
            raise OfficialError(f"only the fusion stage's step is timed, not {stage!r}")
        torch = self.torch
        a, b = nchw(torch, ir, 255.0), nchw(torch, vi, 255.0)
        net = self.fusion_net(**TRANS, train_flag=True).train()
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.9)

        def run():
            with torch.no_grad():
                ir_sh, ir_de = self.ae_ir(a)
                vi_sh, vi_de = self.ae_vi(b)
            opt.zero_grad()
            out = net.train_module(a, b, ir_sh, vi_sh, ir_de, vi_de, False, *self.losses)
            out["total_loss"].backward()
            opt.step()
        return run
