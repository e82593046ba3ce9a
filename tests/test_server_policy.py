"""The server's own rules, in process: which names a request may use, and how many models stay loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdplay import models
from sdplay.errors import SdplayError
from sdplay.server.config import ServerConfig
from sdplay.server.policy import PathPolicy, refuse_downloads
from sdplay.server.uploads import Uploads, safe_name


def policy(root: Path, loopback: bool = False) -> PathPolicy:
    uploads = Uploads(root, 1000)
    return PathPolicy(root, uploads.path, loopback, default_model="/srv/models/house-model")


@pytest.mark.parametrize("spec", ["/etc", "./weights", "~/models/x.safetensors", "..\\x", "a b c", "a/b/c"])
def test_beyond_loopback_model_settings_cannot_name_local_paths(tmp_path, spec) -> None:
    with pytest.raises(SdplayError, match="refuses local model paths"):
        policy(tmp_path).apply({"model": spec})
    with pytest.raises(SdplayError, match="lora: "):
        policy(tmp_path).apply({"lora": spec})


def test_aliases_hub_ids_and_the_servers_own_model_are_welcome_from_anywhere(tmp_path) -> None:
    data = {"model": "SD15", "tiny_vae": "auto", "depth_model": "depth-anything/Depth-Anything-V2-Small-hf"}
    assert policy(tmp_path).apply(data) == data
    assert policy(tmp_path).apply({"model": "/srv/models/house-model"})["model"] == "/srv/models/house-model"
    assert policy(tmp_path, loopback=True).apply({"model": "./my-folder"}) == {"model": "./my-folder"}


def test_file_settings_become_real_paths_under_the_root(tmp_path) -> None:
    (tmp_path / "txt2img" / "run").mkdir(parents=True)
    applied = policy(tmp_path).apply({"init": "txt2img/run/0000.png", "images": ["a.png", str(tmp_path / "b.png")]})
    assert applied["init"] == str(tmp_path.resolve() / "txt2img" / "run" / "0000.png")
    assert applied["images"] == [str(tmp_path.resolve() / "a.png"), str(tmp_path.resolve() / "b.png")]
    with pytest.raises(SdplayError, match="must be a file name"):
        policy(tmp_path).apply({"mask": 7})
    with pytest.raises(SdplayError, match=r"^init: this server does not download URLs; upload the file"):
        policy(tmp_path, loopback=True).apply({"init": "HTTPS://example.com/picture.png"})


def test_a_url_is_refused_where_the_animation_would_read_it_and_left_alone_where_it_is_switched_off(tmp_path) -> None:
    from sdplay.animate.settings import AnimationSettings

    data = {"use_init": False, "init_image": "https://deforum.github.io/a1/I1.png", "model": "mini"}
    applied = policy(tmp_path).apply(data)
    assert applied["init_image"] == data["init_image"]  # as Deforum's default file has it: not used
    refuse_downloads(AnimationSettings(**applied))
    with pytest.raises(SdplayError, match=r"^init_image: this server does not download URLs; upload the file"):
        refuse_downloads(AnimationSettings(**{**applied, "use_init": True}))
    video = {"animation_mode": "Video Input", "video_init_path": "HTTPS://example.com/clip.mp4", "model": "mini"}
    with pytest.raises(SdplayError, match=r"^video_init_path: this server does not download URLs"):
        refuse_downloads(AnimationSettings(**policy(tmp_path, loopback=True).apply(video)))


def test_control_images_and_models_follow_the_same_rules(tmp_path) -> None:
    applied = policy(tmp_path).apply({"control": ["canny:edges.png:0.8", "none:depth.png"]})
    assert applied["control"] == [f"canny:{tmp_path.resolve()}/edges.png:0.8", f"none:{tmp_path.resolve()}/depth.png"]
    with pytest.raises(SdplayError, match="control: '/etc/passwd' is outside"):
        policy(tmp_path).apply({"control": ["canny:/etc/passwd:1"]})
    with pytest.raises(SdplayError, match="no upload"):
        policy(tmp_path).apply({"control": "canny:upload:0123456789abcdef:0.5"})
    with pytest.raises(SdplayError, match="control_model: "):
        policy(tmp_path).apply({"control_model": ["lllyasviel/sd-controlnet-canny", "/srv/cn.safetensors"]})
    with pytest.raises(SdplayError, match="hires_upscaler: "):
        policy(tmp_path).apply({"hires_upscaler": "../RealESRGAN_x4.pth"})
    assert policy(tmp_path).apply({"hires_upscaler": "lanczos"}) == {"hires_upscaler": "lanczos"}


def test_animate_controlnet_units_follow_the_same_rules(tmp_path) -> None:
    units = {"cn_1_model": "control_v11p_sd15_canny [d14c016b]", "cn_2_model": "None", "cn_2_vid_path": "pose.mp4"}
    assert policy(tmp_path).apply(units)["cn_2_vid_path"] == str(tmp_path.resolve() / "pose.mp4")
    with pytest.raises(SdplayError, match="cn_3_vid_path: '/etc/passwd' is outside"):
        policy(tmp_path).apply({"cn_3_vid_path": "/etc/passwd"})
    with pytest.raises(SdplayError, match="cn_5_model: "):
        policy(tmp_path).apply({"cn_5_model": "/srv/cn.safetensors"})


def test_uploaded_names_keep_only_their_last_plain_part() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\my photo (1).png") == "my_photo_1_.png"
    assert safe_name("..") == "upload" and safe_name(None) == "upload"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"host": "0.0.0.0"}, "--auth USER:PASS or --token"),
        ({"host": "192.168.1.5", "token": "short"}, "at least 8"),
        ({"keep_models": 0}, "--keep-models"),
    ],
)
def test_unsafe_server_settings_are_refused(options, words) -> None:
    with pytest.raises(SdplayError, match=words.replace("-", "\\-")):
        ServerConfig(**options).check()


def test_loopback_and_opted_out_servers_start() -> None:
    ServerConfig(host="::1").check()
    ServerConfig(host="localhost").check()
    ServerConfig(host="0.0.0.0", insecure_no_auth=True).check()


def test_keep_models_keeps_the_most_recently_used(tiny_model, tiny_inpaint_model, monkeypatch) -> None:
    monkeypatch.setattr(models, "KEEP_MODELS", 2)
    models.unload_all()
    first = models.load_model(str(tiny_model), device="cpu")
    second = models.load_model(str(tiny_inpaint_model), device="cpu")
    assert models.load_model(str(tiny_model), device="cpu") is first  # both kept: no second load
    assert models.load_model(str(tiny_inpaint_model), device="cpu") is second
    assert [m.name for m in models.loaded_models()] == [first.name, second.name]  # least recently used first
    monkeypatch.setattr(models, "KEEP_MODELS", 1)  # the default: a new model frees the one before
    models.load_model(str(tiny_model), device="cpu", attention_slicing=True)  # other options: other weights
    assert [m.name for m in models.loaded_models()] == [first.name]
    models.unload_all()
