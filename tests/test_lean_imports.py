"""Start-up: a run imports the model classes it uses, not every one its libraries know.

Each check runs in a fresh interpreter: what a process has imported cannot be undone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fresh_process import cli_in_fresh_process
from tiny_models import save_tiny_lora

# one module each of what a Stable Diffusion run does not use, the compiler, peft (LoRA only), sharded loading
# and accelerate (offloading and large weights only)
UNUSED = [
    "diffusers.models.unets.unet_motion_model",
    "diffusers.models.transformers.transformer_flux",
    "diffusers.models.autoencoders.autoencoder_kl_wan",
    "diffusers.models.controlnets.controlnet_flux",
    "scipy.stats.distributions",
    "scipy.optimize._minimize",
    "torch._dynamo.convert_frame",
    "torch._inductor",
    "peft",
    "torch.distributed.tensor",
    "torch.distributed.fsdp",
    "accelerate",
]


def run_python(code: str, cwd: Path) -> list:
    """Run code in a fresh interpreter; it prints one JSON line last."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(args: list[str], cwd: Path) -> tuple[int, list[str]]:
    """`sdplay ARGS` in a fresh interpreter: its exit code and which of UNUSED it imported."""
    exit_code, imported, _ = cli_in_fresh_process(args, cwd, UNUSED)
    return exit_code, [m for m in UNUSED if m in imported]


def test_a_txt2img_imports_none_of_the_model_classes_it_does_not_use(tmp_path) -> None:
    exit_code, imported = run_cli(["txt2img", "a red circle", "--model", "mini", "--steps", "2", "-q"], tmp_path)
    assert exit_code == 0
    assert imported == []


def test_a_txt2img_with_a_lora_still_loads_it(tiny_model, tmp_path) -> None:
    lora = save_tiny_lora(tiny_model, tmp_path)
    args = ["txt2img", "x", "--model", str(tiny_model), "--steps", "2", "--lora", str(lora), "-q"]
    exit_code, imported = run_cli(args, tmp_path)
    assert exit_code == 0 and {"peft", "accelerate"} <= set(imported)


def test_a_job_that_offloads_still_has_accelerate(tmp_path) -> None:
    exit_code, imported = run_cli(
        ["txt2img", "a red circle", "--model", "mini", "--steps", "2", "--limit", "-q"], tmp_path
    )
    assert exit_code == 0 and imported == ["accelerate"]


def test_importing_sdplay_as_a_library_changes_no_import_behaviour(tmp_path) -> None:
    deferred = run_python(
        "import json, sys, sdplay\n"
        "import diffusers.models.unets.unet_2d_condition\n"
        "print(json.dumps('diffusers.models.unets.unet_motion_model' in sys.modules))\n",
        tmp_path,
    )
    assert deferred is True


def test_the_deferred_packages_still_give_every_name_they_define(tmp_path) -> None:
    names = run_python(
        "import json, sys\n"
        "from sdplay.lean_imports import make_imports_lean\n"
        "make_imports_lean()\n"
        "import diffusers.models.unets.unet_2d_condition\n"  # a submodule alone: the package's __init__ waits
        "waited = 'diffusers.models.unets.unet_motion_model' not in sys.modules\n"
        "from diffusers.models.unets import UNetMotionModel\n"  # a name of the package: its __init__ runs
        "import scipy.stats\n"
        "print(json.dumps([waited, UNetMotionModel.__name__, round(float(scipy.stats.norm.cdf(0.0)), 3)]))\n",
        tmp_path,
    )
    assert names == [True, "UNetMotionModel", 0.5]


def test_the_compiler_works_as_ever_once_it_is_used(tmp_path) -> None:
    checks = run_python(
        "import json, sys\n"
        "from sdplay.lean_imports import make_imports_lean\n"
        "make_imports_lean()\n"
        "import torch\n"
        "from diffusers.models.attention import BasicTransformerBlock\n"  # marked allow_in_graph at import
        "from diffusers.utils.torch_utils import is_compiled_module\n"
        "from transformers.loss.loss_for_object_detection import linear_sum_assignment\n"
        "linear = torch.nn.Linear(2, 2)\n"
        "plain = is_compiled_module(linear)\n"
        "waited = 'torch._dynamo.convert_frame' not in sys.modules\n"
        "compiled = torch.compile(linear, backend='eager')\n"
        "same = bool(torch.equal(compiled(torch.ones(1, 2)), linear(torch.ones(1, 2))))\n"
        "from torch._dynamo.trace_rules import is_callable_allowed\n"
        "rows, cols = linear_sum_assignment([[4, 1], [2, 3]])\n"
        "print(json.dumps([plain, waited, is_compiled_module(compiled), same,\n"
        "    is_callable_allowed(BasicTransformerBlock), [int(c) for c in cols]]))\n",
        tmp_path,
    )
    assert checks == [False, True, True, True, True, [1, 0]]


def test_a_command_keeps_the_libraries_indexes_on_disk_and_reads_them_next_time(tmp_path, monkeypatch) -> None:
    cache, work = tmp_path / "cache", tmp_path / "work"
    (work / "outputs").mkdir(parents=True)  # the folder a command runs in is on its search path: it stays as it is
    monkeypatch.setenv("SDPLAY_CACHE_DIR", str(cache))
    args = ["txt2img", "a red circle", "--model", "mini", "--steps", "1", "-q"]
    assert run_cli(args, work) == (0, [])
    stored = sorted((cache / "imports").iterdir())
    assert [path.name.split("-")[0] for path in stored] == ["distributions", "transformers"]
    written = [path.stat().st_mtime_ns for path in stored]
    assert run_cli(args, work) == (0, [])
    assert [path.stat().st_mtime_ns for path in stored] == written
