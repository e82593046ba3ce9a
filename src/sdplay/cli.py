"""The `sdplay` command: thin typer front door onto the API; it never touches tensors.

Every image mode takes the same common options, built once below and attached to each
command's signature, so a flag is spelled the same everywhere.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .errors import EXIT_USER_ERROR, SdplayError
from .lean_imports import hide_unused, make_imports_lean, needs_accelerate

app = typer.Typer(
    name="sdplay",
    help="A local Stable Diffusion playground: txt2img, img2img, inpaint, dream and animate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
log = logging.getLogger("sdplay")


def _opt(annotation: Any, default: Any, *names: str, help: str, **extra: Any) -> inspect.Parameter:
    name = names[0].split("/")[0].lstrip("-").replace("-", "_")
    option = typer.Option(*names, help=help, **extra)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
    )


PROMPT = inspect.Parameter(
    "prompt",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[str | None, typer.Argument(help="What to draw (may come from --config instead).")],
)
INIT = _opt(Path | None, None, "--init", "--image", "-i", help="Init image file.")
MASK = _opt(Path | None, None, "--mask", help="Mask image: white = repaint, black = keep.")
STRENGTH = _opt(float | None, None, "--strength", help="How much to change the init image, 0..1.")

# (parameter, name of the ImageSettings field it fills, or None when it is not a setting)
COMMON: list[tuple[inspect.Parameter, str | None]] = [
    (
        _opt(str | None, None, "--model", "-m", help="Alias, hub id[@rev], diffusers folder or .safetensors/.ckpt."),
        "model",
    ),
    (_opt(str | None, None, "--negative", "-n", help="Negative prompt."), "negative"),
    (_opt(int | None, None, "--width", "-W", help="Width in pixels (multiple of 8)."), "width"),
    (_opt(int | None, None, "--height", "-H", help="Height in pixels (multiple of 8)."), "height"),
    (_opt(int | None, None, "--steps", help="Denoising steps."), "steps"),
    (_opt(float | None, None, "--guidance", "--scale", help="Classifier-free guidance scale."), "guidance"),
    (_opt(int | None, None, "--seed", help="Seed of the first image (random when absent; always recorded)."), "seed"),
    (_opt(int | None, None, "--num", help="Number of images."), "num"),
    (_opt(int | None, None, "--batch-size", help="Images per denoising batch."), "batch_size"),
    (
        _opt(str | None, None, "--scheduler", "--sampler", help="ddim, pndm, lms, euler, euler_a, dpm++_2m, ..."),
        "scheduler",
    ),
    (_opt(str | None, None, "--device", help="auto, cpu, cuda or mps."), "device"),
    (_opt(str | None, None, "--dtype", help="auto, fp32, fp16 or bf16."), "dtype"),
    (_opt(str | None, None, "--backend", help="pytorch, openvino (CPU) or auto."), "backend"),
    (
        _opt(bool | None, None, "--safety-checker/--no-safety-checker", help="Use the model's safety checker."),
        "safety_checker",
    ),
    (_opt(bool | None, None, "--limit", help="Keep memory low (offload, attention/VAE slicing)."), "limit"),
    (_opt(bool | None, None, "--cpu-offload", help="CUDA: keep each model on the CPU until it runs."), "cpu_offload"),
    (
        _opt(bool | None, None, "--sequential-offload", help="CUDA: offload layer by layer (least memory)."),
        "sequential_offload",
    ),
    (
        _opt(bool | None, None, "--attention-slicing", help="Compute attention in slices (less memory)."),
        "attention_slicing",
    ),
    (_opt(bool | None, None, "--vae-tiling", help="Decode large images tile by tile."), "vae_tiling"),
    (
        _opt(bool | None, None, "--compile", help="torch.compile the UNet, VAE and depth model (slow first call)."),
        "compile",
    ),
    (
        _opt(
            str | None, None, "--tiny-vae", help="Tiny VAE for fast decoding: auto (TAESD/TAESDXL), a folder or hub id."
        ),
        "tiny_vae",
    ),
    (
        _opt(
            str | None,
            None,
            "--lora",
            help="LoRA weights (file, folder or hub id), fused; LCM-LoRA sets the lcm sampler.",
        ),
        "lora",
    ),
    (_opt(float | None, None, "--lora-scale", help="Strength of the LoRA (default 1.0)."), "lora_scale"),
    (
        _opt(
            str | None, None, "--model-config", help="Diffusers config (folder or hub id) for a single-file checkpoint."
        ),
        "model_config",
    ),
    (_opt(Path | None, None, "--outdir", "-o", help="Root folder for outputs (default ./outputs)."), None),
    (
        _opt(Path | None, None, "--config", "-c", help="Settings file (JSON/YAML/TOML), e.g. a run's settings.json."),
        None,
    ),
    (_opt(str | None, None, "--token", help="Hugging Face token (default: HF_TOKEN or the cached login)."), None),
    (_opt(bool, False, "--local-only", help="Use only files already on this machine."), None),
    (_opt(bool, False, "--quiet", "-q", help="No progress bar or info messages."), None),
    (_opt(bool, False, "--debug", help="Show tracebacks and library messages."), None),
]
HIRES = [
    (
        _opt(float | None, None, "--hires-scale", help="Hires fix: redraw the picture this many times larger."),
        "hires_scale",
    ),
    (
        _opt(float | None, None, "--hires-strength", help="Hires fix: how much the redraw changes (0.5)."),
        "hires_strength",
    ),
    (
        _opt(str | None, None, "--hires-upscaler", help="Hires fix: lanczos or an upscaler model file."),
        "hires_upscaler",
    ),
]
CONTROL = [
    (
        _opt(
            list[str] | None, None, "--control", help="ControlNet input TYPE:IMAGE[:WEIGHT], TYPE canny, depth or none."
        ),
        "control",
    ),
    (
        _opt(list[str] | None, None, "--control-model", help="ControlNet model (one, or one per --control)."),
        "control_model",
    ),
    (
        _opt(float | None, None, "--control-start", help="ControlNet: from this fraction of the steps (0)."),
        "control_start",
    ),
    (
        _opt(float | None, None, "--control-end", help="ControlNet: until this fraction of the steps (1)."),
        "control_end",
    ),
    (
        _opt(str | None, None, "--depth-model", help="ControlNet depth: depth model (default Depth Anything V2)."),
        "depth_model",
    ),
]
MODE_OPTIONS = {
    "txt2img": HIRES + CONTROL,
    "img2img": [(INIT, "init"), (STRENGTH, "strength"), *CONTROL],
    "inpaint": [(INIT, "init"), (MASK, "mask"), (STRENGTH, "strength"), *CONTROL],
}
MODE_HELP = {
    "txt2img": "Draw images from a prompt.",
    "img2img": "Redraw an init image guided by a prompt (--init/--image IMG --strength S).",
    "inpaint": "Repaint the white part of a mask on an init image (--init IMG --mask IMG).",
}


def setup_logging(quiet: bool, debug: bool) -> None:
    """Our own messages go to stderr as `warning: ...`; libraries stay silent unless --debug."""
    from .quiet import silence_libraries

    silence_libraries(debug)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.INFO, "info")
    log.propagate = False


def guarded(debug: bool, action: Callable[[], None]) -> None:
    """Run a command: user errors become one line and exit 2; Ctrl-C keeps what was written."""
    try:
        action()
    except SdplayError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        print("interrupted: every finished file was kept", file=sys.stderr)
        raise typer.Exit(130) from None


def settings_from(mode: str, values: dict[str, Any], config: Path | None) -> Any:
    """Config file values first, then every flag that was given on the command line."""
    from .settings import ImageSettings, read_config

    data: dict[str, Any] = dict(read_config(config)) if config else {}
    data["mode"] = data.get("mode", mode)
    if data["mode"] != mode:
        raise SdplayError(f"the config file is for {data['mode']}, not {mode}")
    for param, field_name in COMMON + MODE_OPTIONS[mode]:
        if field_name and values.get(param.name) not in (None, []):  # a repeatable flag not given is []
            value = values[param.name]
            data[field_name] = str(value) if isinstance(value, Path) else value
    if values.get("prompt") is not None:
        data["prompt"] = values["prompt"]
    if not data.get("prompt") and mode == "txt2img":
        raise SdplayError('no prompt given: sdplay txt2img "a prompt" (or --config FILE)')
    return ImageSettings.from_dict(data)


def run_job(job: Any, quiet: bool, label: str) -> Any:
    """Run a job with the terminal's listeners; image modes print each picture's path as it is written."""
    from .engine import events as ev
    from .progress import run_in_terminal

    prints_pictures = job.mode in ("txt2img", "img2img", "inpaint")

    def print_pictures(event: ev.Event) -> None:
        if isinstance(event, ev.FileWritten) and event.kind == "frame" and prints_pictures:
            print(event.path, flush=True)

    result = run_in_terminal(job, err, not quiet and sys.stderr.isatty(), label, print_pictures)
    if result.cancelled:
        print("interrupted: every finished file was kept", file=sys.stderr)
        if result.run_dir is not None and not prints_pictures:
            print(f"continue with: sdplay {job.mode} --resume {result.run_dir}", file=sys.stderr)
        raise typer.Exit(130)
    return result


def run_image_mode(mode: str, values: dict[str, Any]) -> None:
    from .engine import Job

    settings = settings_from(mode, values, values.get("config"))
    hide_unused(lora=bool(settings.lora), accelerate=needs_accelerate(settings))
    job = Job(mode, settings, outdir=values.get("outdir"), token=values.get("token"), local_only=values["local_only"])
    result = run_job(job, values["quiet"], "image")
    if result.run_dir is not None and not values["quiet"]:
        log.info("seed %d; settings in %s", result.settings.seed, result.run_dir / "settings.json")


def image_command(mode: str) -> Callable[..., None]:
    def command(**values: Any) -> None:
        setup_logging(values["quiet"], values["debug"])
        guarded(values["debug"], lambda: run_image_mode(mode, values))

    params = [PROMPT] + [p for p, _ in MODE_OPTIONS[mode]] + [p for p, _ in COMMON]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = MODE_HELP[mode]
    command.__name__ = mode
    return command


for _mode in MODE_OPTIONS:
    app.command(_mode)(image_command(_mode))


@app.command()
def models(
    debug: Annotated[bool, typer.Option("--debug", help="Show library messages.")] = False,
) -> None:
    """List the model aliases and the models already in the local Hugging Face cache."""
    setup_logging(False, debug)
    from .catalog import cached_models
    from .specs import ALIASES

    out = Console(highlight=False)
    out.print("[bold]aliases[/bold]")
    for name, alias in ALIASES.items():
        location = "bundled" if name == "mini" else alias.location
        out.print(f"  {name:<13} {location:<50} {alias.about}", markup=False)
    cached = cached_models()
    out.print("[bold]in the local cache[/bold]" + ("" if cached else ": none"))
    for repo, size in cached:
        out.print(f"  {repo:<50} {size / 2**30:6.2f} GiB", markup=False)


@app.command()
def info(
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto, fp32, fp16 or bf16.")] = "auto",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show versions, the device and dtype sdplay would use, and the default model."""
    setup_logging(False, debug)

    def show() -> None:
        from .catalog import describe_environment

        for key, value in describe_environment(device, dtype).items():
            print(f"{key:<14} {value}")

    guarded(debug, show)


DREAM_PROMPTS = inspect.Parameter(
    "prompts",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[
        list[str] | None, typer.Argument(help="Key point prompts: one for all, or one per key point.")
    ],
)
# (parameter, DreamSettings field); the image modes' --seed and --num make no sense for a walk
DREAM_OPTIONS: list[tuple[inspect.Parameter, str | None]] = [
    (_opt(str | None, None, "--seeds", help="Seeds of the key points, e.g. 1,2,3 (random when absent)."), "seeds"),
    (
        _opt(list[Path] | None, None, "--image", help="Key point image (repeatable, in order with the prompts)."),
        "images",
    ),
    (_opt(float | None, None, "--strength", help="With --image: how far each image is noised, 0..1."), "strength"),
    (_opt(int | None, None, "--frames", help="Frames per key point (default 24)."), "frames"),
    (_opt(int | None, None, "--total-frames", help="Frames of the whole walk, instead of --frames."), "total_frames"),
    (_opt(bool | None, None, "--loop", help="Walk back to the first key point at the end."), "loop"),
    (_opt(float | None, None, "--fps", help="Frames per second of the video (default 24)."), "fps"),
    (_opt(str | None, None, "--format", help="mp4 (default), gif, frames, or a comma list."), "formats"),
    (_opt(Path | None, None, "--audio", help="wav/mp3/ogg: sets the length, moves on loud beats, muxed in."), "audio"),
    (_opt(str | None, None, "--prompt-interp", help="Text embeddings: lerp (default) or slerp."), "prompt_interp"),
    (
        _opt(int | None, None, "--interpolate", help="Also 2x/4x the frames by interpolation (interpolated/)."),
        "interpolate",
    ),
    (
        _opt(str | None, None, "--interpolate-timing", help="smooth (x the fps, default) or slowmo (same fps)."),
        "interpolate_timing",
    ),
    (
        _opt(Path | None, None, "--interpolate-model", help="RIFE 4.26 weights: learned in-between frames."),
        "interpolate_model",
    ),
    (_opt(Path | None, None, "--resume", help="Continue an interrupted dream run folder."), None),
]


def dream_settings_from(values: dict[str, Any], config: Path | None) -> Any:
    """Config file values first, then every flag given on the command line."""
    from .dream import DreamSettings
    from .settings import read_config

    data: dict[str, Any] = dict(read_config(config)) if config else {}
    for param, field_name in DREAM_OPTIONS + CONTROL + [(p, f) for p, f in COMMON if f not in ("seed", "num")]:
        value = values.get(param.name)
        if field_name and value is not None and value != []:
            data[field_name] = [str(v) for v in value] if isinstance(value, list) else value
    if values.get("prompts"):
        data["prompts"] = values["prompts"]
    for flag, other in (("frames", "total_frames"), ("total_frames", "frames")):
        if values.get(flag) is not None:  # a flag overrides the config's way of counting frames
            data.pop(other, None)
    return DreamSettings.from_dict(data)


def run_dream_command(values: dict[str, Any]) -> None:
    from .engine import Job

    resume = values.get("resume")
    if resume and values.get("prompts"):
        raise SdplayError("--resume takes everything from the run's settings.json; leave out the prompts")
    settings = None if resume else dream_settings_from(values, values.get("config"))
    # a resumed run's settings are read later
    hide_unused(lora=settings is None or bool(settings.lora), accelerate=settings is None or needs_accelerate(settings))
    ignored = [
        "--" + p.name.replace("_", "-")
        for p, f in DREAM_OPTIONS + CONTROL + COMMON
        if f and values.get(p.name) not in (None, [])
    ]
    if resume and ignored:
        from .output import RunFolder

        RunFolder.reopen(resume, "dream")  # a wrong folder is the one thing to say
        log.warning("--resume uses the run's settings.json; ignored: %s", ", ".join(ignored))
    job = Job(
        "dream",
        settings,
        outdir=values.get("outdir"),
        resume=resume,
        token=values.get("token"),
        local_only=values["local_only"],
    )
    result = run_job(job, values["quiet"], "frame")
    for path in result.videos or [result.run_dir]:
        print(path)
    if not values["quiet"]:
        seeds = ",".join(map(str, result.settings.seeds))
        log.info("%d frames in %s; seeds %s", len(result.paths), result.run_dir, seeds)


def dream(**values: Any) -> None:
    setup_logging(values["quiet"], values["debug"])
    guarded(values["debug"], lambda: run_dream_command(values))


dream.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [DREAM_PROMPTS] + [p for p, _ in DREAM_OPTIONS + CONTROL] + [p for p, f in COMMON if f not in ("seed", "num")]
)
dream.__doc__ = "A video walking the latent space between key points (prompt, seed[, image])."
app.command("dream")(dream)


@app.command("animate")
def animate(
    files: Annotated[list[Path] | None, typer.Argument(help="More settings files (after --config).")] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="Settings file(s): ours (YAML/JSON/TOML) or Deforum's (.txt/.json)."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value on top of each file, e.g. max_frames=24.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model spec (default sd15).")] = None,
    depth_model: Annotated[str | None, typer.Option("--depth-model", help="Depth model; none = flat.")] = None,
    interpolate: Annotated[
        int | None, typer.Option("--interpolate", help="Also 2x/4x the frames by interpolation (interpolated/).")
    ] = None,
    interpolate_timing: Annotated[
        str | None, typer.Option("--interpolate-timing", help="smooth (x the fps, default) or slowmo (same fps).")
    ] = None,
    interpolate_model: Annotated[
        Path | None, typer.Option("--interpolate-model", help="RIFE 4.26 weights: learned in-between frames.")
    ] = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", "-o", help="Root folder for outputs.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue an interrupted animate run.")] = None,
    video_format: Annotated[str, typer.Option("--format", help="Video: mp4 (H.264) or gif.")] = "mp4",
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, fp32, fp16 or bf16.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="pytorch, openvino (CPU) or auto.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Hugging Face token.")] = None,
    local_only: Annotated[bool, typer.Option("--local-only", help="Use only files already here.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or info messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and library messages.")] = False,
) -> None:
    """Deforum-style animation (2D, 3D, Video Input, Interpolation) from settings files."""
    setup_logging(quiet, debug)
    flags = {"model": model, "depth_model": depth_model, "device": device, "dtype": dtype, "backend": backend}
    flags.update(interpolate=interpolate, interpolate_timing=interpolate_timing)
    flags["interpolate_model"] = str(interpolate_model) if interpolate_model else None
    options = {"outdir": outdir, "video_format": video_format, "token": token, "local_only": local_only, "quiet": quiet}

    def run_all() -> None:
        from .animate.settings import parse_overrides

        paths = [*(config or []), *(files or [])]
        extra = {**parse_overrides(overrides or []), **{k: v for k, v in flags.items() if v is not None}}
        if resume is not None:
            if paths or extra:
                raise SdplayError("--resume takes everything from the run's settings.json; leave out other settings")
            run_animate_command(None, {}, resume, **options)
            return
        if not paths and not parse_overrides(overrides or []):
            raise SdplayError("nothing to animate: give a settings file (--config FILE) or settings (--set key=value)")
        failed = []
        for path in paths or [None]:
            try:
                run_animate_command(path, extra, None, **options)
            except SdplayError as exc:
                if len(paths) < 2 or debug:
                    raise
                print(f"error: {path}: {exc}", file=sys.stderr)
                failed.append(str(path))
        if failed:
            raise SdplayError(f"{len(failed)} of {len(paths)} settings files failed: {', '.join(failed)}")

    guarded(debug, run_all)


def run_animate_command(
    path: Path | None,
    overrides: dict[str, Any],
    resume: Path | None,
    outdir: Path | None,
    video_format: str,
    token: str | None,
    local_only: bool,
    quiet: bool,
) -> None:
    from .animate.settings import settings_from
    from .engine import Job

    settings = None if resume else settings_from(path, overrides)
    where = {"outdir": outdir, "resume": resume, "video_format": video_format}
    result = run_job(Job("animate", settings, **where, token=token, local_only=local_only), quiet, "frame")
    for video in result.videos:
        print(video)
    log.info("%d frames in %s; seed %d", len(result.paths), result.run_dir, result.settings.seed)


@app.command()
def batch(
    file: Annotated[Path | None, typer.Argument(help="Batch file (YAML/JSON/TOML): jobs, sweeps, grids.")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue a batch folder: only its unfinished jobs run.")
    ] = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", "-o", help="Root folder for outputs.")] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run on Ray: --ray alone starts a local instance; or auto, or a cluster address (needs sdplay[farm]).",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Ray: how many workers (default: one per GPU, else per 4 cores).")
    ] = None,
    shared_outdir: Annotated[
        bool,
        typer.Option(
            "--shared-outdir",
            help="Ray: the output root is on a filesystem every worker sees at the same path; "
            "workers write their frames there instead of sending them back.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or info messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and library messages.")] = False,
) -> None:
    """Run a batch file of jobs and sweeps (here, or across workers with --ray); --resume continues one."""
    setup_logging(quiet, debug)

    def run_all() -> None:
        from .engine import CancelToken
        from .farm import open_batch, run_batch
        from .farm.progress import BatchBar
        from .progress import ctrl_c_cancels

        if workers is not None and ray is None:
            raise SdplayError("--workers counts Ray workers; add --ray")
        if shared_outdir and ray is None:
            raise SdplayError("--shared-outdir tells Ray workers they can write the outputs; add --ray")
        if ray is not None:
            from .farm.cluster import import_ray

            import_ray()  # a missing extra is said before the batch folder is made
        manifest = open_batch(file, resume, outdir)
        cancel = CancelToken()
        with BatchBar(err, not quiet and sys.stderr.isatty()) as bar, ctrl_c_cancels(cancel, err) as started:
            started[0] = True
            address = None if ray is None else ray or "local"
            finished = run_batch(manifest, bar, cancel, address, workers, shared_outdir)
        for job in manifest.jobs:
            print(f"{job.state:<8} {job.run_dir or '-'}" + (f"  error: {job.error}" if job.error else ""))
        print(manifest.path)
        if not finished:
            print(f"interrupted: continue with: sdplay batch --resume {manifest.folder}", file=sys.stderr)
            raise typer.Exit(130)
        failed = manifest.counts()["failed"]
        if failed:
            raise SdplayError(f"{failed} of {len(manifest.jobs)} jobs failed; see {manifest.path}")

    guarded(debug, run_all)


@app.command()
def bench(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec, or random:sd15 / random:sd15-turbo (random weights).")
    ] = "mini",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto, fp32, fp16 or bf16.")] = "auto",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed calls per figure (median).")] = 3,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (default: the model's).")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Image size (default: the model's native size).")] = None,
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="Also time the fresh-pipeline baselines.")] = True,
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the UNet, VAE and depth model first.")
    ] = False,
    tiny_vae: Annotated[
        str | None, typer.Option("--tiny-vae", help="Tiny VAE: auto, a folder, or random (TAESD's shape).")
    ] = None,
    depth_model: Annotated[
        str,
        typer.Option(
            "--depth-model",
            help="Depth model for the 3D figures: none (flat), a folder, or random (Depth Anything V2 Small's shape).",
        ),
    ] = "none",
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="Instead: these CPU backends beside PyTorch fp32 (openvino, openvino:fp32, pytorch:bf16, ...).",
        ),
    ] = None,
    figures: Annotated[
        list[str] | None,
        typer.Option(
            "--figures",
            help="With --backend: only these figures (conversion, memory, unet, txt2img, img2img, inpaint, dream, "
            "animate).",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Measure every mode beside its naive baseline (same run) and print a table."""
    setup_logging(True, debug)

    def measure() -> None:
        from .bench.run import print_table, run_bench, write_json

        if json_out is not None and not json_out.parent.is_dir():  # before minutes of measuring, not after
            raise SdplayError(f"--json {json_out}: the folder {json_out.parent} does not exist")
        save = None if json_out is None else partial(write_json, path=json_out)  # after each section
        report = run_bench(
            model, device, dtype, repeats, steps, size, naive, compile, tiny_vae, depth_model, save, backend, figures
        )
        print_table(report, Console(highlight=False, width=None if sys.stdout.isatty() else 140))
        if json_out is not None:
            print(json_out)

    guarded(debug, measure)


SERVER_OPTIONS: list[inspect.Parameter] = [
    _opt(str, "127.0.0.1", "--host", help="Address to listen on; beyond loopback needs --auth or --token."),
    _opt(int, 7860, "--port", help="Port (0 picks a free one; the address is printed)."),
    _opt(str | None, None, "--model", "-m", help="Default model of jobs that name none (loaded at start)."),
    _opt(str, "auto", "--device", help="auto, cpu, cuda or mps (the default of jobs)."),
    _opt(str, "auto", "--dtype", help="auto, fp32, fp16 or bf16 (the default of jobs)."),
    _opt(Path, Path("outputs"), "--outdir", "-o", help="Output root: runs and uploads; the only files served."),
    _opt(int, 1, "--keep-models", help="Models kept loaded at once (switching frees the least recently used)."),
    _opt(str | None, None, "--auth", help="USER:PASS: require HTTP Basic authentication."),
    _opt(str | None, None, "--token", help="Require this bearer token (header, or ?token= once in a browser)."),
    _opt(bool, False, "--insecure-no-auth", help="Allow beyond loopback with no auth: anyone may run jobs."),
    _opt(int, 1024 * 1024, "--max-pixels", help="Largest width x height of a job."),
    _opt(int, 150, "--max-steps", help="Most denoising steps of a job."),
    _opt(int, 1000, "--max-frames", help="Most frames of a dream or animate job."),
    _opt(int, 16, "--max-num", help="Most pictures of an image job (and batch size)."),
    _opt(float, 20.0, "--max-upload-mb", help="Largest upload (MiB)."),
    _opt(bool, False, "--debug", help="Show tracebacks and library messages."),
]


def server_command(page: bool) -> Callable[..., None]:
    def command(**values: Any) -> None:
        setup_logging(False, values["debug"])

        def start() -> None:
            from .server.config import Limits, ServerConfig
            from .server.serve import serve

            limits = Limits(
                values["max_pixels"],
                values["max_steps"],
                values["max_frames"],
                values["max_num"],
                values["max_upload_mb"],
            )
            model = values["model"]
            if model and Path(model).expanduser().exists():
                model = str(Path(model).expanduser().resolve())
            config = ServerConfig(
                host=values["host"],
                port=values["port"],
                outdir=values["outdir"],
                model=model,
                device=values["device"],
                dtype=values["dtype"],
                keep_models=values["keep_models"],
                auth=values["auth"],
                token=values["token"],
                insecure_no_auth=values["insecure_no_auth"],
                limits=limits,
            )
            serve(config, page)

        guarded(values["debug"], start)

    command.__signature__ = inspect.Signature(SERVER_OPTIONS)  # type: ignore[attr-defined]
    command.__doc__ = (
        "Serve the web page and the HTTP job API on one queue (http://127.0.0.1:7860)."
        if page
        else "Serve the HTTP job API (OpenAPI at /docs) on one queue, without the page."
    )
    command.__name__ = "ui" if page else "serve"
    return command


app.command("serve")(server_command(page=False))
app.command("ui")(server_command(page=True))


@contextmanager
def frame_progress(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A frame-counting bar for the tools that rework finished frames (they run outside the engine)."""
    from .engine.events import Progress
    from .progress import ProgressBar

    with ProgressBar(err, enabled=not quiet and sys.stderr.isatty(), label="frame") as bar:
        yield lambda done, total: bar(Progress("tool", done, total, done - 1, total, None))


@app.command()
def upscale(
    source: Annotated[Path | None, typer.Argument(help="A picture, a run folder of frames, or a video.")] = None,
    scale: Annotated[int | None, typer.Option("--scale", "-s", help="2, 4, ... (default: the upscaler's).")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="lanczos (default), an upscaler file (.pth/.safetensors), or sd-x4."),
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="sd-x4: what the picture shows.")] = None,
    negative: Annotated[str | None, typer.Option("--negative", "-n", help="sd-x4: negative prompt.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="sd-x4: denoising steps (default 20).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="sd-x4: guidance (default 9).")] = None,
    noise_level: Annotated[
        int | None, typer.Option("--noise-level", help="sd-x4: noise on the small picture, 0..350 (default 20).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="sd-x4: seed (random when absent; recorded).")] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of the video (default: the source's).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, fp32, fp16 or bf16.")] = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", "-o", help="Root folder for outputs.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Settings file, e.g. settings.json.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue an interrupted upscale run folder.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Hugging Face token (sd-x4).")] = None,
    local_only: Annotated[bool, typer.Option("--local-only", help="Use only files already here.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or info messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and library messages.")] = False,
) -> None:
    """Upscale a picture, or every frame of a run folder or video, into a new run folder."""
    setup_logging(quiet, debug)
    flags = {
        "source": str(source) if source else None,
        **dict(scale=scale, model=model, prompt=prompt, negative=negative, steps=steps, guidance=guidance),
        **dict(noise_level=noise_level, seed=seed, fps=fps, device=device, dtype=dtype),
    }

    def run() -> None:
        from .settings import read_config
        from .upscaling import UpscaleSettings

        data = {**(read_config(config) if config else {}), **{k: v for k, v in flags.items() if v is not None}}
        if resume is not None and data:
            raise SdplayError("--resume takes everything from the run's settings.json; leave out other settings")
        settings = None if resume is not None else UpscaleSettings.from_dict(data)
        from .upscaling import run_upscale

        with frame_progress(quiet) as on_frame:
            result = run_upscale(settings, outdir, True, token, local_only, on_frame, resume)
        for path in [result.video] if result.video else result.paths or []:
            print(path)
        made = len(result.paths or [])
        log.info("upscaled by %d: %d frame(s) in %s", result.settings.scale, made, result.run_dir)

    guarded(debug, run)


@app.command()
def interpolate(
    source: Annotated[Path | None, typer.Argument(help="A video, or a run folder of numbered frames.")] = None,
    multiplier: Annotated[
        int | None, typer.Option("-x", "--multiplier", help="Frames per original interval: 2 (default), 4, ...")
    ] = None,
    timing: Annotated[
        str | None, typer.Option("--timing", help="smooth: multiply the fps (default); slowmo: keep it.")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="flow (optical flow, no download).")] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", "--interpolate-model", "-m", help="RIFE 4.26 weights: learned in-between frames."),
    ] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of the result, instead.")] = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", "-o", help="Root folder for outputs.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Settings file, e.g. settings.json.")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue an interrupted interpolate run folder.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or info messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and library messages.")] = False,
) -> None:
    """New frames between the frames of a video or run folder, into a new run folder with the video."""
    setup_logging(quiet, debug)
    flags = {"source": str(source) if source else None, "multiplier": multiplier, "timing": timing}
    flags.update(method=method, fps=fps, model=str(model) if model else None)

    def run() -> None:
        from .frame_interpolation import InterpolateSettings, run_interpolate
        from .settings import read_config

        data = {**(read_config(config) if config else {}), **{k: v for k, v in flags.items() if v is not None}}
        if resume is not None and data:
            raise SdplayError("--resume takes everything from the run's settings.json; leave out other settings")
        settings = None if resume is not None else InterpolateSettings.from_dict(data)
        with frame_progress(quiet) as on_frame:
            result = run_interpolate(settings, outdir, True, on_frame, resume)
        print(result.video)
        log.info("%d frames at %g fps in %s", result.frame_count, result.settings.fps, result.run_dir)

    guarded(debug, run)


OUTPAINT_OPTIONS: list[tuple[inspect.Parameter, str | None]] = [
    (_opt(int | None, None, "--left", help="Pixels to add on the left."), "left"),
    (_opt(int | None, None, "--right", help="Pixels to add on the right."), "right"),
    (_opt(int | None, None, "--top", help="Pixels to add at the top."), "top"),
    (_opt(int | None, None, "--bottom", help="Pixels to add at the bottom."), "bottom"),
    (_opt(str | None, None, "--expand", help="Grow to WIDTHxHEIGHT, half on each side."), "expand"),
    (_opt(int | None, None, "--blend", help="Pixels inside the picture over which the seam fades (8)."), "blend"),
    (STRENGTH, "strength"),
]


def outpaint(**values: Any) -> None:
    setup_logging(values["quiet"], values["debug"])

    def run() -> None:
        from .outpainting import OutpaintSettings, run_outpaint
        from .settings import read_config

        config = values.get("config")
        data: dict[str, Any] = dict(read_config(config)) if config else {}
        for param, field_name in OUTPAINT_OPTIONS + COMMON:
            if field_name and values.get(param.name) is not None:
                data[field_name] = values[param.name]
        data.update({k: str(values[k]) for k in ("source", "prompt") if values.get(k) is not None})
        settings = OutpaintSettings.from_dict(data)
        from .progress import ProgressBar

        with ProgressBar(err, enabled=not values["quiet"] and sys.stderr.isatty()) as bar:
            result = run_outpaint(settings, values.get("outdir"), True, values.get("token"), values["local_only"], bar)
        for path in result.paths or []:
            print(path)
        log.info("seed %d; settings in %s", result.settings.image.seed, result.run_dir / "settings.json")

    guarded(values["debug"], run)


OUTPAINT_SOURCE = inspect.Parameter(
    "source",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[Path | None, typer.Argument(help="The picture to grow.")],
)
outpaint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        OUTPAINT_SOURCE,
        PROMPT.replace(
            annotation=Annotated[str | None, typer.Argument(help="What to draw (default: the picture's own prompt).")]
        ),
    ]
    + [p for p, _ in OUTPAINT_OPTIONS + COMMON]
)
outpaint.__doc__ = "Grow a picture on any side; the new strips are drawn to match (--right 128, --expand 768x512)."
app.command("outpaint")(outpaint)


RAY_ADDRESS = re.compile(r"(auto|local|ray://\S+|[\w.-]+:\d+)")


def ray_without_address(args: list[str]) -> list[str]:
    """`--ray` may stand alone (a local Ray instance): then it gets the value `local`, so that the next
    word (the batch file) is not taken for an address."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--ray" and (i + 1 == len(out) or not RAY_ADDRESS.fullmatch(out[i + 1])):
            out.insert(i + 1, "local")
            break
    return out


def main() -> None:
    """Run the app; a bad flag or value is one `error:` line and exit 2, like every other user mistake."""
    from typer.exceptions import TyperException

    make_imports_lean()  # the CLI's own process only: a library user's imports stay as their libraries made them
    args = ray_without_address(sys.argv[1:]) or ["--help"]
    try:
        code = app(args, standalone_mode=False)
    except TyperException as exc:  # typer's usage errors: unknown option, a value of the wrong type, ...
        print(f"error: {exc.format_message()}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
