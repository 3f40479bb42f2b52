"""python -m jaxfuse.convert --model MODEL --torch PATH[,PATH...] --out DIR

``--torch`` takes the official state-dict file(s) (``.pth``/``.model`` with torch installed, or
an ``.npz`` of each state dict with the official key names, without torch): one for siba,
``AE_IR,AE_VI,FUSION`` for crossfuse.

Writes DIR/checkpoints/0/{state,config}: a self-describing checkpoint that ``jaxfuse.fuse``,
``jaxfuse.evaluate`` (``--checkpoint DIR``) and ``jaxfuse.train`` (``--config.init_from=DIR``)
load like any other. Nothing is left behind on failure.
"""

import argparse
import shutil
import sys
from pathlib import Path

from jaxfuse import checkpoint
from jaxfuse.convert import ConversionError, available, to_flax
from jaxfuse.data.images import make_temp_dir


def write_checkpoint(model_name: str, variables: dict, model_config: dict, out_dir, origin: str = "") -> Path:
    """Writes the converted variables + config into a temp dir, then renames it to ``out_dir``."""
    out = Path(out_dir).absolute()
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        config = {"model_name": model_name, "model": model_config, "converted_from": origin}
        mgr = checkpoint.manager(tmp / "checkpoints", keep=1)
        checkpoint.save(mgr, 0, dict(variables), config)
        mgr.wait_until_finished()
        mgr.close()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxfuse.convert", description=__doc__.split("\n\n")[1])
    parser.add_argument("--model", required=True, choices=available())
    parser.add_argument("--torch", required=True,
                        help="official state dict file(s), comma-separated (.pth/.model, or .npz of a state dict)")
    parser.add_argument("--out", required=True, help="new checkpoint directory")
    args = parser.parse_args(argv)
    try:
        paths = args.torch.split(",")
        variables, model_config = to_flax(args.model, paths)
        origin = ",".join(str(Path(p).absolute()) for p in paths)
        out = write_checkpoint(args.model, variables, model_config, args.out, origin=origin)
    except (ConversionError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({args.model}, {model_config})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
