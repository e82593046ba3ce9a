"""The HTTP job API used as a script would: a real `sdplay serve --model mini` on a free loopback port."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from server_helpers import SRC, running_server, submit, wait, wait_for_progress

pytest.importorskip("fastapi", reason="the server extra: pip install -e '.[ui]'")

FAST = {"steps": 4, "seed": 1}
MAX_UPLOAD_MB = 0.05


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def client(outdir: Path):
    options = ["--max-upload-mb", str(MAX_UPLOAD_MB), "--max-frames", "40", "--max-steps", "80", "--max-num", "16"]
    with running_server(outdir, *options) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def png_bytes(colour: tuple[int, int, int], square: tuple[int, int, int] | None = None) -> bytes:
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:] = colour
    if square is not None:
        pixels[16:48, 16:48] = square
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def picture_of(client: httpx.Client, job: dict, kind: str = "frame") -> Image.Image:
    url = next(f["url"] for f in job["files"] if f["kind"] == kind)
    response = client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail


def test_txt2img_runs_on_the_server_and_its_picture_carries_its_parameters(client, outdir) -> None:
    job = submit(client, "txt2img", {"prompt": "a red circle on a blue background", **FAST})
    assert job["state"] in ("queued", "running") and job["events"] == f"/jobs/{job['id']}/events"
    done = wait(client, job["id"])
    assert done["state"] == "finished", done
    picture = picture_of(client, done)
    assert picture.size == (64, 64) and "Seed: 1" in picture.info["parameters"]
    assert done["settings"]["model"] == "mini" and done["settings"]["steps"] == 4
    settings = client.get(next(f["url"] for f in done["files"] if f["kind"] == "settings")).json()
    assert settings["prompt"] == "a red circle on a blue background"
    assert any(run["run"] == done["run"] for run in client.get("/runs").json())


def test_the_event_stream_tells_progress_previews_files_and_the_end(client) -> None:
    job = submit(client, "txt2img", {"prompt": "a blue square", **FAST}, previews=True)
    events = []
    with client.stream("GET", f"/jobs/{job['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "end" and events[-1]["state"] == "finished"
    assert {"started", "progress", "preview", "file", "finished"} <= set(kinds)
    preview = Image.open(
        io.BytesIO(__import__("base64").b64decode(next(e for e in events if e["type"] == "preview")["png"]))
    )
    assert preview.mode == "RGB" and preview.size[0] >= 8
    assert [e["step"] for e in events if e["type"] == "progress"][-1] == 4


def test_img2img_with_a_picture_uploaded_in_the_same_request(client) -> None:
    job = {"mode": "img2img", "settings": {"prompt": "a blue circle", "strength": 0.5, **FAST}}
    files = {"init": ("red square.png", png_bytes((30, 80, 220), (220, 30, 30)), "image/png")}
    response = client.post("/jobs", data={"job": json.dumps(job)}, files=files)
    assert response.status_code == 202, response.text
    done = wait(client, response.json()["id"])
    assert done["state"] == "finished", done
    assert done["settings"]["init"].endswith("red_square.png") and "/uploads/" in done["settings"]["init"]
    assert picture_of(client, done).size == (64, 64)


def test_inpaint_with_a_mask_referenced_by_an_earlier_upload(client) -> None:
    init = client.post("/uploads", files={"file": ("init.png", png_bytes((30, 80, 220)), "image/png")}).json()
    mask = client.post("/uploads", files={"file": ("mask.png", png_bytes((0, 0, 0), (255, 255, 255)), "image/png")})
    assert mask.status_code == 201 and init["ref"].startswith("upload:")
    settings = {"prompt": "a red circle", "init": init["ref"], "mask": mask.json()["ref"], **FAST}
    done = wait(client, submit(client, "inpaint", settings)["id"])
    assert done["state"] == "finished", done
    pixels = np.asarray(picture_of(client, done).convert("RGB")).astype(int)
    corner = pixels[:8, :8].reshape(-1, 3).mean(0)
    assert abs(corner - (30, 80, 220)).max() < 40  # outside the mask the picture is kept


def test_a_six_frame_dream_writes_its_frames_and_video(client) -> None:
    settings = {"prompts": ["a red circle", "a blue square"], "seeds": [1, 2], "total_frames": 6, "steps": 3}
    done = wait(client, submit(client, "dream", settings)["id"])
    assert done["state"] == "finished", done
    frames = [f for f in done["files"] if f["kind"] == "frame"]
    assert [f["frame"] for f in frames] == list(range(6)) and done["total"] == 6
    video = next(f for f in done["files"] if f["kind"] == "video")
    assert video["path"].endswith(".mp4") and client.get(video["url"]).content[4:8] == b"ftyp"


def test_a_four_frame_animate_run(client) -> None:
    settings = {"prompts": {"0": "a red circle"}, "max_frames": 4, "steps": 4, "zoom": "0: (1.05)", "seed": 3}
    done = wait(client, submit(client, "animate", settings, video_format="gif")["id"])
    assert done["state"] == "finished", done
    assert sorted(f["frame"] for f in done["files"] if f["kind"] == "frame") == [0, 1, 2, 3]
    assert picture_of(client, done, "video").format == "GIF"


def test_cancel_stops_the_running_job_within_a_step_and_takes_queued_ones_off(client, outdir) -> None:
    long = submit(client, "txt2img", {"prompt": "a red circle", "num": 16, "steps": 60, "seed": 1})
    queued = submit(client, "txt2img", {"prompt": "never made", **FAST})
    after = submit(client, "txt2img", {"prompt": "a blue circle", **FAST})
    assert client.get(f"/jobs/{queued['id']}").json()["position"] >= 1
    cancelled = client.delete(f"/jobs/{queued['id']}").json()
    assert cancelled["state"] == "cancelled" and cancelled["run"] is None
    running = wait_for_progress(client, long["id"])
    began = time.monotonic()
    stopped = client.delete(f"/jobs/{long['id']}").json()
    assert stopped["state"] == "cancelled" and time.monotonic() - began < 10
    assert stopped["progress"]["step"] < 60 or stopped["progress"]["frame"] < 15, running
    assert (outdir / stopped["run"] / "settings.json").is_file()  # the folder and any finished picture stay
    assert wait(client, after["id"])["state"] == "finished"
    assert client.delete("/jobs/nosuchjob").status_code == 404


def test_a_cancelled_animate_run_resumes_to_every_frame(client, outdir) -> None:
    settings = {"prompts": {"0": "a red circle"}, "max_frames": 24, "steps": 4, "seed": 5, "zoom": "0: (1.02)"}
    job = submit(client, "animate", settings)
    while not any(f["kind"] == "frame" for f in client.get(f"/jobs/{job['id']}").json()["files"]):
        time.sleep(0.05)
    stopped = client.delete(f"/jobs/{job['id']}").json()
    assert stopped["state"] == "cancelled" and not any(f["kind"] == "video" for f in stopped["files"])
    kept = sorted(f["frame"] for f in stopped["files"] if f["kind"] == "frame")
    assert kept == list(range(len(kept))) and len(kept) < 24
    done = wait(client, submit(client, "animate", {}, resume=stopped["run"])["id"])
    assert done["state"] == "finished" and done["run"] == stopped["run"], done
    made = sorted(f["frame"] for f in done["files"] if f["kind"] == "frame")
    assert made == list(range(len(kept), 24)) and any(f["kind"] == "video" for f in done["files"])


def test_jobs_run_in_the_order_they_were_queued(client) -> None:
    ids = [submit(client, "txt2img", {"prompt": f"circle {i}", "steps": 2, "seed": i})["id"] for i in range(3)]
    queue = [job["id"] for job in client.get("/jobs").json()]
    assert [queue.index(i) for i in ids] == sorted(queue.index(i) for i in ids)
    ended = [wait(client, i) for i in ids]
    runs = [job["run"] for job in ended]
    assert all(job["state"] == "finished" for job in ended) and runs == sorted(runs)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"mode": "paint", "settings": {}}, 422, "mode must be one of"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "steps": 0}}, 422, "steps"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "width": "big"}}, 422, "width"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "colour": "red"}}, 422, "unknown setting"),
        ({"mode": "txt2img", "settings": ["prompt"]}, 422, "settings must be a JSON object"),
        ({"mode": "txt2img", "settings": {}, "priority": 1}, 422, "unknown field"),
        ({"mode": "txt2img", "settings": {"prompt": "x"}, "previews": "yes"}, 422, "previews"),
        ({"mode": "img2img", "settings": {"prompt": "x"}}, 422, "init image"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "width": 4096, "height": 4096}}, 422, "size: 4096x4096"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "steps": 500}}, 422, "steps: 500"),
        ({"mode": "txt2img", "settings": {"prompt": "x", "num": 100}}, 422, "num: 100"),
        ({"mode": "animate", "settings": {"max_frames": 5000}}, 422, "frames: 5000"),
        (
            {"mode": "animate", "settings": {"enable_steps_scheduling": True, "steps_schedule": "0: (90)"}},
            422,
            "steps: 90",
        ),
        ({"mode": "dream", "settings": {"prompts": ["a", "b"], "frames": 999}}, 422, "frames: 999"),
        ({"mode": "dream", "settings": {"prompts": "a"}, "resume": "dream/none"}, 422, "leave out settings"),
        ({"mode": "dream", "settings": {}, "resume": "dream/none"}, 422, "no settings.json"),
        ({"mode": "dream", "settings": {}, "resume": "animate/x"}, 422, "give a dream run as dream/<name>"),
    ],
)
def test_bad_jobs_get_a_4xx_with_one_line(client, body, status, words) -> None:
    refused(client.post("/jobs", json=body), status, words)


def test_a_job_that_fails_while_running_reports_the_same_line_the_cli_prints(client, outdir) -> None:
    (outdir / "notes.png").write_text("not a picture")
    done = wait(client, submit(client, "img2img", {"prompt": "x", "init": "notes.png", **FAST})["id"])
    assert (
        done["state"] == "failed" and done["error"].startswith("cannot read init image") and "\n" not in done["error"]
    )


def test_bodies_that_are_not_jobs_are_refused(client) -> None:
    json_body = {"content-type": "application/json"}
    refused(client.post("/jobs", content=b"{nope", headers=json_body), 400, "not valid JSON")
    refused(client.post("/jobs", content=b"[" * 100_000 + b"]" * 100_000, headers=json_body), 400, "nested too deeply")
    twice = b'{"mode": "txt2img", "mode": "dream", "settings": {}}'
    refused(client.post("/jobs", content=twice, headers=json_body), 400, "gives 'mode' twice")
    refused(client.post("/jobs", content=b"prompt=x", headers={"content-type": "text/plain"}), 415, "application/json")
    refused(client.post("/jobs", data={"nojob": "1"}, files={"init": ("a.png", b"x")}), 422, "`job` field")
    job = json.dumps({"mode": "img2img", "settings": {"prompt": "x"}})
    refused(client.post("/jobs", data={"job": job}, files={"secret": ("a.png", b"x")}), 422, "unexpected part")
    refused(client.get("/jobs/abc", params={"wait": "soon"}), 422, "wait")
    refused(client.get("/jobs/nosuchjob"), 404, "no job")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../../../../etc/passwd", "'..' is refused"),
        ("/etc/passwd", "outside the server's files"),
        ("%2e%2e/%2e%2e/etc/passwd", "URL-encoded"),
        ("..%2F..%2Fetc%2Fpasswd", "URL-encoded"),
        ("uploads\\..\\..\\etc\\passwd", "backslash"),
        ("escape/passwd", "outside the server's files"),
        ("upload:../../etc", "no upload"),
    ],
)
def test_settings_cannot_name_files_outside_the_output_root(client, outdir, name, words) -> None:
    (outdir / "escape").unlink(missing_ok=True)
    (outdir / "escape").symlink_to("/etc")
    refused(client.post("/jobs", json={"mode": "img2img", "settings": {"prompt": "x", "init": name}}), 403, words)
    body = {"mode": "dream", "settings": {"prompts": ["a", "b"], "audio": name, "total_frames": 4}}
    refused(client.post("/jobs", json=body), 403, words)


def test_runs_serve_only_files_inside_their_run(client, outdir) -> None:
    run = wait(client, submit(client, "txt2img", {"prompt": "a red circle", **FAST})["id"])["run"]
    (outdir / run / "link.txt").symlink_to("/etc/hostname")
    assert client.get(f"/runs/{run}/settings.json").status_code == 200
    for path in (f"/runs/{run}/link.txt", f"/runs/{run}/..%2F..%2F..%2Fetc%2Fpasswd", f"/runs/{run}/%2e%2e/x"):
        assert client.get(path).status_code in (403, 404), path
    assert client.get("/runs/secrets/x/y").status_code == 404


def test_oversized_uploads_are_refused_and_leave_nothing(client, outdir) -> None:
    before = sorted((outdir / "uploads").iterdir()) if (outdir / "uploads").exists() else []
    big = b"\0" * int(MAX_UPLOAD_MB * 2**20 * 1.5)
    refused(client.post("/uploads", files={"file": ("big.png", big)}), 413, "larger than this server allows")
    job = json.dumps({"mode": "img2img", "settings": {"prompt": "x"}})
    refused(client.post("/jobs", data={"job": job}, files={"init": ("big.png", big)}), 413, "larger")
    job = json.dumps({"mode": "img2img", "settings": {"prompt": "x", "steps": 0}})
    refused(client.post("/jobs", data={"job": job}, files={"init": ("ok.png", png_bytes((0, 0, 0)))}), 422, "steps")
    assert (sorted((outdir / "uploads").iterdir()) if (outdir / "uploads").exists() else []) == before


def test_models_and_info_describe_the_server(client) -> None:
    models = client.get("/models").json()
    assert models["default"] == "mini" and "mini" in [a["name"] for a in models["aliases"]]
    info = client.get("/info").json()
    assert info["loopback"] is True and info["auth"] is False and info["limits"]["max_frames"] == 40
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"ImageSettings", "DreamSettings", "AnimationSettings", "JobRequest"} <= set(schemas)


def test_a_server_with_a_token_refuses_calls_without_it(tmp_path) -> None:
    token = "s3cret-token"
    with running_server(tmp_path, "--token", token, "--auth", "ann:pw") as url:
        refused(httpx.get(f"{url}/jobs"), 401, "authentication required")
        refused(httpx.get(f"{url}/jobs", headers={"Authorization": "Bearer wrong-token"}), 401, "authentication")
        assert httpx.get(f"{url}/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(f"{url}/jobs", auth=("ann", "pw")).status_code == 200
        refused(httpx.get(f"{url}/jobs", auth=("ann", "nope")), 401, "authentication")
        first = httpx.get(f"{url}/jobs", params={"token": token})
        assert first.status_code == 200 and "sdplay_token" in first.headers["set-cookie"]
        assert httpx.get(f"{url}/jobs", cookies={"sdplay_token": token}).status_code == 200


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--host", "0.0.0.0"], "give --auth USER:PASS or --token TOKEN"),
        (["--host", "0.0.0.0", "--auth", "nopass"], "--auth must be USER:PASS"),
        (["--host", "127.0.0.1", "--port", "99999"], "cannot listen on 127.0.0.1:99999"),
        (["--device", "tpu"], "device: must be one of"),
    ],
)
def test_the_server_refuses_to_start_unsafely_in_one_line(tmp_path, options, words) -> None:
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "sdplay", "serve", "--outdir", str(tmp_path), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
