"""python -m jaxfuse.convert --model siba --torch PATH.pth|PATH.npz --out DIR

Writes DIR/checkpoints/0/{state,config}: a self-describing checkpoint that ``jaxfuse.fuse``,
``jaxfuse.evaluate`` (``--checkpoint DIR``) and ``jaxfuse.train`` (``--config.init_from=DIR``)
load like any other. Nothing is left behind on failure.
"""

import argparse
import shutil
import sys
from pathlib import Path

from jaxfuse import checkpoint
from jaxfuse.convert import TABLES, ConversionError, to_flax
from jaxfuse.data.images import make_temp_dir


def write_checkpoint(model_name: str, params, model_config: dict, out_dir, origin: str = "") -> Path:
    """Writes the converted params + config into a temp dir, then renames it to ``out_dir``."""
    out = Path(out_dir).absolute()
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        config = {"model_name": model_name, "model": model_config, "converted_from": origin}
        mgr = checkpoint.manager(tmp / "checkpoints", keep=1)
        checkpoint.save(mgr, 0, {"params": params}, config)
        mgr.wait_until_finished()
        mgr.close()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxfuse.convert", description=__doc__.split("\n\n")[1])
    parser.add_argument("--model", required=True, choices=sorted(TABLES))
    parser.add_argument("--torch", required=True, help="official checkpoint (.pth) or an .npz of its state dict")
    parser.add_argument("--out", required=True, help="new checkpoint directory")
    args = parser.parse_args(argv)
    try:
        params, model_config = to_flax(args.model, args.torch)
        out = write_checkpoint(args.model, params, model_config, args.out, origin=str(Path(args.torch).absolute()))
    except (ConversionError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({args.model}, {model_config})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
