"""The web page: a Gradio app mounted on the API's FastAPI app, submitting to the same JobQueue.

Each tab builds a job request exactly as an API client would (`Server.job_from`), so the page
has no rules of its own: a refusal or a failed job shows the same one line the API returns.
Settings the tabs do not lay out by hand are built from the settings classes' JSON schema, so
every option the CLI has is on the page. A tab follows its job (progress, live preview, files)
by reading the job's record every fraction of a second while the job runs.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import yaml
from PIL import Image

from ..errors import SdplayError
from ..output import parse_parameters
from .app import Refused, Server
from .jobs import ENDED, JobRecord
from .schemas import settings_schemas

POLL = 0.2  # seconds between looks at a running job
PREVIEW_SIZE = 256
IMAGE_MODES = ("txt2img", "img2img", "inpaint")
# laid out by hand on the image tabs; every other ImageSettings field goes under "More options"
IMAGE_MAIN = (
    "prompt",
    "negative",
    "width",
    "height",
    "steps",
    "guidance",
    "seed",
    "num",
    "batch_size",
    "scheduler",
    "model",
    "strength",
    "init",
    "mask",
    "mode",
)
DREAM_MAIN = ("prompts", "seeds", "images", "audio", "frames", "total_frames", "loop", "fps", "formats", "mode")
RESTORED = {"Steps": "steps", "CFG scale": "guidance", "Seed": "seed", "Sampler": "scheduler", "Model": "model"}


class Page:
    """The Gradio Blocks over one Server; built once, mounted at `/`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.schemas = settings_schemas()
        self.defaults = {"device": server.config.device, "dtype": server.config.dtype}

    # ---- jobs ---------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any], refs: dict[str, list[str]] | None = None) -> JobRecord:
        job, _ = self.server.job_from(body, refs or {})
        return self.server.queue.submit(job, previews=True)

    def follow(self, record: JobRecord) -> Iterator[tuple[str, Image.Image | None, list[str]]]:
        """(status line, preview, picture files so far) while the job runs, then once more at its end."""
        while True:
            ended = record.state in ENDED
            preview = record.preview
            if preview is not None:
                preview = preview.resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.NEAREST)
            yield status_line(record, self.server.queue.position(record)), preview, self.pictures(record)
            if ended:
                return
            time.sleep(POLL)

    def pictures(self, record: JobRecord) -> list[str]:
        root = self.server.root
        return [str(root / f["path"]) for f in record.files if f["kind"] == "frame" and f["path"].endswith(".png")]

    def upload_image(self, image: Image.Image, name: str) -> str:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        buffer.seek(0)
        return self.server.uploads.save(name, buffer).ref

    def upload_file(self, path: str | None) -> str | None:
        if not path:
            return None
        with open(path, "rb") as handle:
            return self.server.uploads.save(Path(path).name, handle).ref

    def cancel(self, job_id: str | None) -> Any:
        """Tell the job to stop. Its "cancelled; N pictures kept" line comes from `follow`, the one writer of
        the status while the job runs: a second writer's line could land before a progress line already on its way."""
        if not job_id or self.server.queue.cancel(job_id) is None:
            return "nothing to cancel"
        return gr.skip()

    # ---- the page -----------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="sdplay") as blocks:
            gr.Markdown("## sdplay — a local Stable Diffusion playground")
            with gr.Tabs() as tabs:
                image_tabs = {mode: self.image_tab(mode) for mode in IMAGE_MODES}
                self.dream_tab()
                self.animate_tab()
                self.history_tab(tabs, image_tabs["txt2img"])
            for source in image_tabs.values():
                for target in ("img2img", "inpaint"):
                    source["send"][target].click(
                        lambda picked, target=target: (editor_value(picked, target), gr.Tabs(selected=target)),
                        inputs=source["picked"],
                        outputs=[image_tabs[target]["init"], tabs],
                    )
        return blocks

    def image_tab(self, mode: str) -> dict[str, Any]:
        schema = self.schemas["ImageSettings"]["properties"]
        with gr.Tab(mode, id=mode):
            with gr.Row():
                with gr.Column(scale=3):
                    fields = {
                        "prompt": gr.Textbox(label="Prompt", lines=2, elem_id=f"{mode}-prompt"),
                        "negative": gr.Textbox(label="Negative prompt"),
                    }
                    init = mask_editor = mask_file = None
                    if mode == "img2img":
                        init = gr.Image(label="Init image", type="pil", elem_id=f"{mode}-init")
                    if mode == "inpaint":
                        init = gr.ImageMask(
                            label="Init image: paint the part to repaint", type="pil", elem_id=f"{mode}-init"
                        )
                        mask_editor = init
                        mask_file = gr.Image(label="Or a mask file (white = repaint)", type="pil")
                    with gr.Row():
                        fields["width"] = optional_number("Width", "integer")
                        fields["height"] = optional_number("Height", "integer")
                        fields["steps"] = optional_number("Steps", "integer", elem_id=f"{mode}-steps")
                        fields["guidance"] = optional_number("Guidance", "number")
                    with gr.Row():
                        fields["seed"] = optional_number("Seed (empty = random)", "integer", elem_id=f"{mode}-seed")
                        random_seed = gr.Button("random seed", size="sm")
                        reuse_seed = gr.Button("reuse last seed", size="sm")
                    with gr.Row():
                        fields["num"] = gr.Number(label="Number", value=1, precision=0, elem_id=f"{mode}-num")
                        fields["batch_size"] = gr.Number(label="Batch size", value=1, precision=0)
                        fields["scheduler"] = gr.Textbox(label="Scheduler (empty = the model's)")
                        fields["model"] = gr.Dropdown(
                            label="Model",
                            choices=model_choices(self.server),
                            value=self.server.config.model,
                            allow_custom_value=True,
                        )
                    if mode != "txt2img":
                        fields["strength"] = optional_number("Strength (0..1)", "number")
                    with gr.Accordion("More options", open=False):
                        fields.update(schema_fields(schema, IMAGE_MAIN, self.defaults))
                    with gr.Row():
                        generate = gr.Button("Generate", variant="primary", elem_id=f"{mode}-generate")
                        cancel = gr.Button("Cancel", variant="stop", elem_id=f"{mode}-cancel")
                with gr.Column(scale=2):
                    status = gr.Markdown("ready", elem_id=f"{mode}-status")
                    preview = gr.Image(
                        label="Preview", interactive=False, elem_id=f"{mode}-preview", height=PREVIEW_SIZE
                    )
                    gallery = gr.Gallery(label="Pictures", elem_id=f"{mode}-gallery", columns=4, height="auto")
                    with gr.Row():
                        send = {
                            target: gr.Button(f"Send to {target}", size="sm", elem_id=f"{mode}-to-{target}")
                            for target in ("img2img", "inpaint")
                        }
            job_id, last_seed, picked = gr.State(None), gr.State(None), gr.State(None)

        def run(values: dict[Any, Any]) -> Iterator[dict[Any, Any]]:
            settings = {name: typed(component, values[component]) for name, component in fields.items()}
            try:
                refs = {}
                if init is not None:
                    refs.update(self.image_refs(mode, values.get(init), values.get(mask_file), mask_editor))
                record = self.submit({"mode": mode, "settings": {**clean(settings), **refs}})
            except (Refused, SdplayError) as exc:
                yield {status: f"error: {exc}"}
                return
            yield {job_id: record.id}
            for line, image, pictures in self.follow(record):
                update = {status: line, gallery: pictures}
                if image is not None:
                    update[preview] = image
                if record.settings:
                    update[last_seed] = record.settings.get("seed")
                if pictures:
                    update[picked] = pictures[0]
                yield update

        inputs = {*fields.values(), *(c for c in (init, mask_file) if c is not None)}
        outputs = [status, preview, gallery, job_id, last_seed, picked]
        generate.click(run, inputs=inputs, outputs=outputs, concurrency_limit=None)
        cancel.click(self.cancel, inputs=job_id, outputs=status, concurrency_limit=None)
        random_seed.click(lambda: None, outputs=fields["seed"])
        reuse_seed.click(lambda seed: seed, inputs=last_seed, outputs=fields["seed"])
        gallery.select(lambda event: gallery_path(event.value), outputs=picked)
        return {"fields": fields, "init": init, "send": send, "picked": picked}

    def image_refs(self, mode: str, init: Any, mask_file: Any, editor: Any) -> dict[str, str]:
        """The init picture (and for inpaint the mask: the uploaded file, else the painted strokes) as uploads."""
        if init is None:
            return {}
        background = init["background"] if isinstance(init, dict) else init
        if background is None:
            return {}
        refs = {"init": self.upload_image(background.convert("RGB"), "init.png")}
        if mode == "inpaint":
            mask = mask_file.convert("L") if mask_file is not None else painted_mask(init)
            if mask is not None:
                refs["mask"] = self.upload_image(mask, "mask.png")
        return refs

    def dream_tab(self) -> None:
        schema = self.schemas["DreamSettings"]["properties"]
        with gr.Tab("dream", id="dream"):
            with gr.Row():
                with gr.Column(scale=3):
                    prompts = gr.Textbox(label="Key point prompts, one a line", lines=3, elem_id="dream-prompts")
                    seeds = gr.Textbox(label="Seeds, e.g. 1,2,3 (empty = random)")
                    images = gr.File(label="Key point images", file_count="multiple", type="filepath")
                    audio = gr.File(label="Audio (wav/mp3/ogg): sets the length, moves on beats", type="filepath")
                    with gr.Row():
                        frames = optional_number("Frames per key point", "integer")
                        total = optional_number("Total frames", "integer", elem_id="dream-total")
                        fps = gr.Number(label="fps", value=24)
                        loop = gr.Checkbox(label="Loop back")
                        formats = gr.Textbox(label="Formats", value="mp4")
                    with gr.Accordion("More options", open=False):
                        more = schema_fields(schema, DREAM_MAIN, self.defaults)
                    with gr.Row():
                        generate = gr.Button("Dream", variant="primary", elem_id="dream-generate")
                        cancel = gr.Button("Cancel", variant="stop", elem_id="dream-cancel")
                with gr.Column(scale=2):
                    status = gr.Markdown("ready", elem_id="dream-status")
                    preview = gr.Image(label="Preview", interactive=False, height=PREVIEW_SIZE)
                    gallery = gr.Gallery(label="Frames", columns=6, height="auto")
                    video = gr.Video(label="Video", elem_id="dream-video")
            job_id = gr.State(None)

        def run(values: dict[Any, Any]) -> Iterator[dict[Any, Any]]:
            settings = {name: typed(component, values[component]) for name, component in more.items()}
            settings.update(
                prompts=[p for p in (values[prompts] or "").splitlines() if p.strip()],
                seeds=values[seeds] or None,
                frames=values[frames],
                total_frames=values[total],
                fps=values[fps],
                loop=values[loop],
                formats=values[formats],
            )
            try:
                refs = {"images": [self.upload_file(p) for p in values[images] or []]}
                settings["audio"] = self.upload_file(values[audio])
                record = self.submit({"mode": "dream", "settings": clean({**settings, **refs})})
            except (Refused, SdplayError) as exc:
                yield {status: f"error: {exc}"}
                return
            yield {job_id: record.id}
            yield from self.follow_video(record, status, preview, gallery, video)

        inputs = {prompts, seeds, images, audio, frames, total, fps, loop, formats, *more.values()}
        generate.click(run, inputs=inputs, outputs=[status, preview, gallery, video, job_id], concurrency_limit=None)
        cancel.click(self.cancel, inputs=job_id, outputs=status, concurrency_limit=None)

    def follow_video(
        self,
        record: JobRecord,
        status: Any,
        preview: Any,
        gallery: Any,
        video: Any,
    ) -> Iterator[dict[Any, Any]]:
        """Status, preview, the latest frames and, once encoded, the video of a dream or animate job."""
        for line, image, pictures in self.follow(record):
            update = {status: line, gallery: pictures[-24:]}
            if image is not None:
                update[preview] = image
            videos = [f["path"] for f in record.files if f["kind"] == "video" and f["path"].endswith(".mp4")]
            if videos:
                update[video] = str(self.server.root / videos[0])
            yield update

    def animate_tab(self) -> None:
        properties = self.schemas["AnimationSettings"]["properties"]
        schedules = [name for name, spec in properties.items() if spec.get("x-schedule")]
        with gr.Tab("animate", id="animate"):
            with gr.Row():
                with gr.Column(scale=3):
                    deforum = gr.File(
                        label="Deforum settings file (.txt / .json) or ours (.yaml)",
                        type="filepath",
                        elem_id="animate-file",
                    )
                    editor = gr.Code(
                        label="Settings (YAML or JSON, as `sdplay animate --config` takes)",
                        language="yaml",
                        value="prompts:\n  '0': a red circle\nmax_frames: 12\n",
                        elem_id="animate-editor",
                        max_lines=24,
                    )
                    max_frames = optional_number(
                        "Max frames (overrides the settings when set)", "integer", elem_id="animate-max-frames"
                    )
                    with gr.Row():
                        schedule = gr.Dropdown(label="Schedule", choices=schedules, value="zoom")
                        plot_button = gr.Button("Plot schedule", size="sm")
                    plot = gr.LinePlot(x="frame", y="value", label="Schedule over the frames")
                    with gr.Row():
                        resume_run = gr.Dropdown(label="Interrupted run to resume", choices=[], allow_custom_value=True)
                        refresh = gr.Button("↻ runs", size="sm")
                    with gr.Row():
                        generate = gr.Button("Render", variant="primary", elem_id="animate-generate")
                        resume = gr.Button("Resume", elem_id="animate-resume")
                        cancel = gr.Button("Cancel", variant="stop", elem_id="animate-cancel")
                with gr.Column(scale=2):
                    status = gr.Markdown("ready", elem_id="animate-status")
                    preview = gr.Image(label="Preview", interactive=False, height=PREVIEW_SIZE)
                    gallery = gr.Gallery(label="Frames", columns=6, height="auto", elem_id="animate-gallery")
                    video = gr.Video(label="Video")
                    settings_file = gr.File(label="The run's settings.json")
            job_id = gr.State(None)

        def settings_of(text: str, frames: Any) -> dict[str, Any]:
            try:
                data = yaml.safe_load(text or "") or {}
            except yaml.YAMLError as exc:
                raise Refused(422, f"the settings are not YAML/JSON: {str(exc).splitlines()[0]}") from None
            if not isinstance(data, dict):
                raise Refused(422, "the settings must be a mapping of setting names to values")
            frames = typed(max_frames, frames)
            return {**data, "max_frames": frames} if frames not in (None, "") else data

        def start(body_of: Any) -> Any:
            def run(text: str, frames: Any, run_id: str | None) -> Iterator[dict[Any, Any]]:
                try:
                    record = self.submit(body_of(text, frames, run_id))
                except (Refused, SdplayError) as exc:
                    yield {status: f"error: {exc}"}
                    return
                yield {job_id: record.id}
                extra = {}
                for update in self.follow_video(record, status, preview, gallery, video):
                    if record.run and not extra:
                        extra = {settings_file: str(self.server.root / record.run / "settings.json")}
                    yield {**update, **(extra if record.state in ENDED else {})}

            return run

        def plot_schedule(text: str, frames: Any, name: str) -> Any:
            from ..engine import Job

            try:
                settings = Job.from_dict("animate", settings_of(text, frames)).settings
                values = settings.series[name]
            except (Refused, SdplayError) as exc:  # a bad file or schedule: say so beside the plot
                return gr.LinePlot(value=None, label=f"error: {one_line(exc)}"), f"error: {one_line(exc)}"
            import pandas as pd

            data = pd.DataFrame({"frame": range(len(values)), "value": [float(v) for v in values]})
            return gr.LinePlot(value=data, label=f"{name} over {len(values)} frames"), "ready"

        def load_file(path: str | None) -> str:
            return Path(path).read_text(encoding="utf-8", errors="replace") if path else gr.skip()

        def animate_runs() -> Any:
            return gr.Dropdown(choices=[r["run"] for r in self.server.runs(100) if r["mode"] == "animate"])

        render = start(lambda text, frames, _: {"mode": "animate", "settings": settings_of(text, frames)})
        again = start(lambda _text, _frames, run_id: {"mode": "animate", "resume": run_id or None})
        outputs = [status, preview, gallery, video, settings_file, job_id]
        generate.click(render, inputs=[editor, max_frames, resume_run], outputs=outputs, concurrency_limit=None)
        resume.click(again, inputs=[editor, max_frames, resume_run], outputs=outputs, concurrency_limit=None)
        cancel.click(self.cancel, inputs=job_id, outputs=status, concurrency_limit=None)
        plot_button.click(plot_schedule, inputs=[editor, max_frames, schedule], outputs=[plot, status])
        deforum.upload(load_file, inputs=deforum, outputs=editor)
        refresh.click(animate_runs, outputs=resume_run)

    def history_tab(self, tabs: gr.Tabs, txt2img: dict[str, Any]) -> None:
        with gr.Tab("history", id="history"):
            with gr.Row():
                with gr.Column(scale=3):
                    refresh = gr.Button("↻ Refresh")
                    runs = gr.Gallery(
                        label="Runs under the output root, newest first",
                        columns=6,
                        height="auto",
                        elem_id="history-gallery",
                    )
                with gr.Column(scale=2):
                    dropped = gr.Image(
                        label="Drop a PNG to restore its settings into txt2img", type="filepath", elem_id="history-drop"
                    )
                    details = gr.JSON(label="Settings / parameters", elem_id="history-details")
            shown = gr.State([])

        def list_runs() -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
            found = self.server.runs(60)
            items = []
            for run in found:
                png = next((name for name in run["files"] if name.endswith(".png")), None)
                if png:
                    items.append(((str(self.server.root / run["run"] / png)), run["run"]))
            return items, [r for r in found if any(n.endswith(".png") for n in r["files"])]

        def show(found: list[dict[str, Any]], event: gr.SelectData) -> Any:
            return found[event.index]["settings"] if 0 <= event.index < len(found) else None

        fields = txt2img["fields"]
        restorable = [
            fields[name]
            for name in ("prompt", "negative", "steps", "guidance", "seed", "scheduler", "model", "width", "height")
        ]

        def restore(path: str | None) -> list[Any]:
            if not path:
                return [gr.skip()] * (len(restorable) + 2)
            with Image.open(path) as image:
                text = image.info.get("parameters")
            if not text:
                return [gr.skip()] * len(restorable) + [{"error": "this PNG carries no parameters"}, gr.skip()]
            found = parse_parameters(text)
            values = {RESTORED.get(key, key): value for key, value in found.items()}
            width, _, height = str(found.get("Size", "")).partition("x")
            values.update(width=number(width), height=number(height))
            for key in ("steps", "seed", "guidance"):
                values[key] = number(values.get(key))
            order = ("prompt", "negative", "steps", "guidance", "seed", "scheduler", "model", "width", "height")
            return [values.get(key) for key in order] + [found, gr.Tabs(selected="txt2img")]

        refresh.click(list_runs, outputs=[runs, shown])
        runs.select(show, inputs=shown, outputs=details)
        dropped.upload(restore, inputs=dropped, outputs=[*restorable, details, tabs])


def mount_page(app: Any, server: Server) -> None:
    """The page at `/`, on the API's app (the API's routes come first), serving pictures from the output root."""
    blocks = Page(server).build()
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        allowed_paths=[str(server.root)],
        max_file_size=server.config.limits.max_upload_bytes,
        show_error=True,
        footer_links=["api"],
    )


def status_line(record: JobRecord, position: int | None) -> str:
    if record.state == "queued":
        return f"queued ({position} ahead)" if position else "queued"
    if record.state == "failed":
        return f"error: {record.error}"
    if record.state == "cancelled":
        return f"cancelled; {sum(f['kind'] == 'frame' for f in record.files)} pictures kept" + (
            f" in {record.run}" if record.run else ""
        )
    progress = record.progress
    if record.state == "finished":
        return f"finished: {record.run}"
    if progress is None:
        return "starting (loading the model)"
    eta = f", {progress['eta']:.1f} s left" if progress.get("eta") is not None else ""
    return f"step {progress['step']}/{progress['steps']}, frame {progress['frame'] + 1}/{progress['frames']}{eta}"


def schema_fields(properties: dict[str, Any], skip: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    """A component for each settings field not laid out by hand, from its JSON schema; `defaults` are
    the server's own (its --device and --dtype) where they replace the settings' defaults."""
    out = {}
    for name, spec in properties.items():
        if name in skip:
            continue
        kinds = {option.get("type") for option in spec.get("anyOf", [spec])}
        choices = next((option["enum"] for option in spec.get("anyOf", [spec]) if "enum" in option), None)
        label, default, info = name.replace("_", " "), defaults.get(name, spec.get("default")), spec.get("description")
        if choices:
            box = gr.Dropdown(label=label, choices=choices, value=default, info=info)
        elif kinds == {"boolean"}:
            box = gr.Checkbox(label=label, value=bool(default), info=info)
        elif kinds & {"integer", "number"} and default is None:
            box = optional_number(label, "integer" if "integer" in kinds else "number", info=info)
        elif kinds & {"integer", "number"}:
            box = gr.Number(label=label, value=default, precision=0 if "integer" in kinds else None, info=info)
        elif "array" in kinds:
            box = gr.Textbox(
                label=f"{label} (one a line)", lines=2, value="\n".join(map(str, default or [])), info=info
            )
            LISTS.add(box._id)
        else:
            box = gr.Textbox(label=label, value="" if default is None else json_text(default), info=info)
        UNCHANGED[box._id] = box.value
        out[name] = box
    return out


LISTS: set[int] = set()  # ids of textboxes holding a list, one item a line
UNCHANGED: dict[int, Any] = {}  # id of a schema-built box -> its first value: left as it is, it is not sent


NUMERIC: dict[int, str] = {}  # id of an optional-number textbox -> "integer" or "number"


def optional_number(label: str, kind: str, **options: Any) -> gr.Textbox:
    """A number that may be left empty (= the model's or the mode's default); a number box cannot be empty."""
    box = gr.Textbox(label=label, placeholder="auto", **options)
    NUMERIC[box._id] = kind
    return box


def typed(component: Any, value: Any) -> Any:
    """A box's value as the settings take it: an optional number's text as a number (text that is no number
    goes on as it is, for the settings to refuse in their own words), a list box's lines as a list, and a
    schema-built box left unchanged as nothing."""
    box = getattr(component, "_id", -1)
    if box in UNCHANGED and value == UNCHANGED[box]:
        return None  # the settings' own default (or the server's) applies
    if box in LISTS:
        return [line.strip() for line in (value or "").splitlines() if line.strip()] or None
    kind = NUMERIC.get(box)
    if kind is None or not isinstance(value, str) or not value.strip():
        return value
    try:
        return int(value) if kind == "integer" else float(value)
    except ValueError:
        return value.strip()


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def clean(settings: dict[str, Any]) -> dict[str, Any]:
    """Empty fields mean 'the default': they are left out."""
    return {name: value for name, value in settings.items() if value not in (None, "", [])}


def painted_mask(editor_value: dict[str, Any]) -> Image.Image | None:
    """White where the user painted on the picture (any layer), black elsewhere."""
    layers = [layer for layer in editor_value.get("layers") or [] if layer is not None]
    if not layers:
        return None
    mask = Image.new("L", layers[0].size, 0)
    for layer in layers:
        alpha = layer.convert("RGBA").getchannel("A")
        mask.paste(255, mask=alpha.point(lambda a: 255 if a > 0 else 0))
    return mask


def editor_value(path: str | None, target: str) -> Any:
    """A picture file as the value of img2img's image box or inpaint's mask editor."""
    if not path:
        return gr.skip()
    return {"background": path, "layers": [], "composite": path} if target == "inpaint" else path


def gallery_path(value: Any) -> str | None:
    if isinstance(value, dict):
        image = value.get("image", value)
        return image.get("path") if isinstance(image, dict) else None
    return None


def model_choices(server: Server) -> list[str]:
    from ..specs import ALIASES

    default = server.config.model
    return ([default] if default and default not in ALIASES else []) + list(ALIASES)


def number(value: Any) -> float | int | None:
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return int(parsed) if parsed.is_integer() else parsed


def one_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
