"""The classic interactive entry point: `python run.py --mode MODE --device cpu|gpu [--save] ...`.

It asks for the token, prompt, size and (for img2img/inpaint) the images and strength, asking
again when an answer is invalid, and works with answers piped on stdin. Images go to the
classic `images/image_N.png`, taking the next free N instead of overwriting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import EXIT_USER_ERROR, SdplayError

T = TypeVar("T")
MODES = ("txt2img", "img2img", "inpaint", "dream", "animate")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py", description="sdplay, the classic interactive way.")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="gpu means CUDA")
    parser.add_argument("--save", action="store_true", help="write images/image_N.png instead of showing")
    parser.add_argument("--num", type=int, default=1, help="number of images (frames for dream)")
    parser.add_argument("--local", action="store_true", help="use local files only; no token asked")
    parser.add_argument("--limit", action="store_true", help="keep memory low (offload, slicing)")
    parser.add_argument("--model", default=None, help="model spec (default: $SDPLAY_MODEL or sd15)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library messages")
    return parser.parse_args(argv)


class Asker:
    """Asks a question until the answer parses; end of input is a user error, not a hang."""

    def __init__(self, read: Callable[[str], str] | None = None) -> None:
        self.read = read

    def ask(self, question: str, parse: Callable[[str], T]) -> T:
        while True:
            try:
                answer = (self.read or input)(question).strip()
            except EOFError:
                print(file=sys.stderr)
                raise SdplayError(f"no answer to {question.strip()!r} (input ended)") from None
            try:
                return parse(answer)
            except (ValueError, SdplayError) as exc:
                print(f"invalid: {exc}", file=sys.stderr)


def parse_size(answer: str) -> tuple[int | None, int | None]:
    """'512 512' (height width), or blank for the model's native size."""
    if not answer:
        return None, None
    parts = answer.replace(",", " ").replace("x", " ").split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError("give two whole numbers, height then width, e.g. 512 512")
    height, width = int(parts[0]), int(parts[1])
    if min(height, width) < 64:
        raise ValueError("height and width must be at least 64")
    return height, width


def parse_strength(answer: str) -> float:
    if not answer:
        return 0.75
    value = float(answer)
    if not 0.0 <= value <= 1.0:
        raise ValueError("strength must be between 0 and 1")
    return value


def parse_image_path(what: str) -> Callable[[str], str]:
    def parse(answer: str) -> str:
        from .inputs import load_image

        if not answer:
            raise ValueError(f"give the path of the {what}")
        load_image(answer, what)
        return answer

    return parse


def has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_images_interactively(args: argparse.Namespace, asker: Asker) -> None:
    from .engine import Job
    from .settings import ImageSettings

    token = None
    if not args.local:
        token = asker.ask("Hugging Face access token (blank = HF_TOKEN or the cached login): ", str) or None
    prompt = asker.ask("Prompt: ", lambda a: a or _fail("the prompt must not be empty"))
    height, width = asker.ask("Height and width (e.g. 512 512; blank = the model's size): ", parse_size)
    init = mask = None
    strength = None
    if args.mode in ("img2img", "inpaint"):
        init = asker.ask("Init image path: ", parse_image_path("init image"))
        if args.mode == "inpaint":
            mask = asker.ask("Mask image path (white = repaint): ", parse_image_path("mask image"))
        strength = asker.ask("Strength, 0-1 (blank = 0.75): ", parse_strength)
    settings = ImageSettings(
        mode=args.mode,
        prompt=prompt,
        width=width,
        height=height,
        num=args.num,
        init=init,
        mask=mask,
        strength=strength,
        model=args.model,
        device="cuda" if args.device == "gpu" else "cpu",
        limit=args.limit,
    )
    job = Job(
        args.mode,
        settings,
        outdir=Path("images"),
        write=args.save,
        layout="classic",
        token=token,
        local_only=args.local,
    )
    result = run_classic(job)
    for path in result.paths:
        print(f"saved {path}")
    if not args.save:
        if has_display():
            for image in result.images:
                image.show()
        else:
            print("no display to show the image on; run with --save to write it to images/image_N.png")


def run_dream_interactively(args: argparse.Namespace, asker: Asker) -> None:
    """Dream the classic way: prompts and size asked, frames and video under images/dream/."""
    from .dream import DreamSettings
    from .engine import Job

    token = None
    if not args.local:
        token = asker.ask("Hugging Face access token (blank = HF_TOKEN or the cached login): ", str) or None
    prompts = asker.ask("Prompts, separated by | (one prompt = a walk between two random seeds): ", parse_prompts)
    height, width = asker.ask("Height and width (e.g. 512 512; blank = the model's size): ", parse_size)
    settings = DreamSettings(
        prompts=prompts,
        width=width,
        height=height,
        total_frames=args.num if args.num >= 2 else None,
        model=args.model,
        device="cuda" if args.device == "gpu" else "cpu",
        limit=args.limit,
    )
    if not args.save:
        print("dream always writes its frames and video (a video cannot be shown without a file)")
    result = run_classic(Job("dream", settings, outdir=Path("images"), token=token, local_only=args.local))
    for path in result.videos:
        print(f"saved {path}")
    print(f"frames in {result.run_dir}")


def parse_prompts(answer: str) -> list[str]:
    prompts = [p.strip() for p in answer.split("|")]
    if not all(prompts):
        raise ValueError("give a prompt, or several separated by |, none of them empty")
    return prompts


DEFAULT_ANIMATION_FILE = "animation.yaml"


def run_animate_interactively(args: argparse.Namespace, asker: Asker) -> None:
    """Animate the classic way: a settings file asked for (a template is written when there is none)."""
    token = None
    if not args.local:
        token = asker.ask("Hugging Face access token (blank = HF_TOKEN or the cached login): ", str) or None
    question = f"Animation settings file (YAML/JSON/TOML or a Deforum .txt; blank = {DEFAULT_ANIMATION_FILE}): "
    path = Path(asker.ask(question, parse_settings_path))
    if not path.exists():
        from .animate.settings import TEMPLATE

        path.write_text(TEMPLATE, encoding="utf-8")
        print(f"wrote a commented template to {path}: edit it, then run this again")
        return
    from .animate.settings import settings_from
    from .engine import Job

    overrides = {"device": "cuda" if args.device == "gpu" else "cpu", "limit": args.limit}
    if args.model:
        overrides["model"] = args.model
    if not args.save:
        print("animate always writes its frames and video (a video cannot be shown without a file)")
    job = Job("animate", settings_from(path, overrides), outdir=Path("images"), token=token, local_only=args.local)
    result = run_classic(job)
    print(f"saved {result.video}")
    print(f"frames in {result.run_dir}")


def run_classic(job: Any) -> Any:
    """Run a job through the engine with a progress bar, the classic tool's way; Ctrl-C cancels it."""
    from rich.console import Console

    from .progress import run_in_terminal

    result = run_in_terminal(job, Console(stderr=True, highlight=False), sys.stderr.isatty(), "image")
    if result.cancelled:
        raise KeyboardInterrupt
    return result


def parse_settings_path(answer: str) -> str:
    """Blank means animation.yaml here (made from a template if missing); another path must exist."""
    if not answer:
        return DEFAULT_ANIMATION_FILE
    if not Path(answer).is_file():
        raise ValueError(f"no settings file at {answer} (leave blank for {DEFAULT_ANIMATION_FILE})")
    return answer


def _fail(message: str) -> str:
    raise ValueError(message)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .cli import setup_logging

    setup_logging(quiet=False, debug=args.debug)
    try:
        if args.num < 1:
            raise SdplayError("--num must be at least 1")
        if args.mode == "animate":
            run_animate_interactively(args, Asker())
        elif args.mode == "dream":
            run_dream_interactively(args, Asker())
        else:
            run_images_interactively(args, Asker())
    except SdplayError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: every finished image was kept", file=sys.stderr)
        return 130
    return 0
