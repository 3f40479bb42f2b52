"""Official SIBA (Afreshbird/SIBA): ``models/SIBA.py`` on [0, 1] inputs; the training step of its
``train.py`` (10 * JointGrad + 0.1 / 1.0 Fusionloss terms, grad-norm clipping 0.01, Adam 1e-4)."""

from jaxfuse.official import nchw, official_imports, torch_cpu


def load(repo):
    torch = torch_cpu()
    stubs = {"timm": {}, "timm.models": {}, "timm.models.layers": {
        "trunc_normal_": lambda t, std=1.0: torch.nn.init.trunc_normal_(t, std=std)}}
    with official_imports(repo, "models/SIBA.py", stubs):
        from models.SIBA import SIBA
        from loss.loss import Fusionloss, JointGrad
    return _Official(torch, SIBA(), JointGrad(), Fusionloss())


class _Official:
    def __init__(self, torch, model, joint_grad, fusion_loss):
        self.torch, self.model, self.joint_grad, self.fusion_loss = torch, model, joint_grad, fusion_loss

    def infer(self, ir, vi):
        a, b = nchw(self.torch, ir), nchw(self.torch, vi)
        self.model.eval()

        def run():
            with self.torch.no_grad():
                return self.model(a, b)
        return run

    def train(self, ir, vi, stage=None):
        torch, model = self.torch, self.model
        a, b = nchw(torch, ir), nchw(torch, vi)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def run():
            opt.zero_grad()
            f = model(a, b)
            loss = 10 * self.joint_grad(f, a, b) + sum(w * t for w, t in zip((0.1, 1.0), self.fusion_loss(f, a, b)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
            opt.step()
        return run
