#!/usr/bin/env bash
# Issue #7's GPU figures in one call of the `device` tool (a lent H100/H200).
#
# That machine has PyTorch, transformers and the rest, but not diffusers or imageio-ffmpeg.
# Fetch their wheels here first (36 MB, under the 64 MiB a call carries):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 imageio-ffmpeg==0.7.0
#
# then call run(command="bash benchmarks/gpu.sh", carry=[".whl"], timeout_s=600) and copy the
# JSON files it leaves in $OUT to benchmarks/results/. Sets, in the order they run (name some to
# run only those: `bash benchmarks/gpu.sh turbo`):
#   sd15           SD 1.5's architecture, fp16, eager: ms/step, share of the FLOP limit, memory
#                  savers' peaks, every mode beside the naive loop; animate at 4 steps
#   turbo          1-step turbo-style model, tiny VAE, compiled: the real-time animate path
#   sd15-compiled  the same as sd15 compiled (warm-up reported apart), without the naive loops
# and two that run only when named, to choose the compile mode sdplay uses on CUDA (inductor's
# default now; unmeasured) by comparing them with `turbo`'s JSON:
#   turbo-autotune    turbo with inductor's max-autotune (TORCHINDUCTOR_MAX_AUTOTUNE=1)
#   turbo-cudagraphs  turbo with CUDA graphs (TORCHINDUCTOR_CUDAGRAPHS=1): launch overhead of a 1-step frame
# Each set has a time limit and its JSON is rewritten after each section, so a set cut short
# keeps what it finished.
set -uo pipefail
out=${OUT:-benchmarks/results}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sdplay-site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/sdplay-site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.csv" 2>&1

bench() {  # set name, time limit in seconds, then `sdplay bench` options
    local name=$1 limit=$2
    shift 2
    timeout "$limit" python3 -m sdplay bench --device cuda --depth-model random --json "$out/cuda-$name.json" "$@" \
        >"$out/cuda-$name.log" 2>&1
    echo "$name: exit $? at ${SECONDS}s"
}

turbo=(--model random:sd15-turbo --tiny-vae random --compile --no-naive --repeats 3)
for set in ${*:-sd15 turbo sd15-compiled}; do
    case $set in
        sd15) bench sd15 270 --model random:sd15 --steps 4 --repeats 1 ;;
        turbo) bench turbo 150 "${turbo[@]}" ;;
        sd15-compiled) bench sd15-compiled 150 --model random:sd15 --steps 4 --compile --no-naive --repeats 2 ;;
        turbo-autotune) (export TORCHINDUCTOR_MAX_AUTOTUNE=1 && bench "$set" 280 "${turbo[@]}") ;;
        turbo-cudagraphs) (export TORCHINDUCTOR_CUDAGRAPHS=1 && bench "$set" 200 "${turbo[@]}") ;;
        *) echo "unknown set $set (sd15, turbo, sd15-compiled, turbo-autotune, turbo-cudagraphs)" && exit 2 ;;
    esac
done
