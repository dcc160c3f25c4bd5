#!/usr/bin/env bash
# The lab on a CUDA GPU, in one short run (at most 9 minutes; each part has its own time limit):
#   1. the demo story end to end (`bench pipeline`: each stage's time, the cards' figures);
#   2. the training loops against their own ceilings (distillation, attacks, SimCLR) and bf16 against fp32;
#   3. SimCLR on real photos: a demo-width encoder pre-trained on DATA (an ImageFolder tree with train/ and
#      test/, e.g. the CIFAR-10 sample) for as many epochs as fit PRETRAIN_SECONDS at the speed its first
#      epochs measure, probed against the same architecture at random init; skipped without DATA;
#   4. torch.compile against eager on the distillation step.
# Usage, from the repository root with the requirements installed: bash bench/gpu_check.sh OUTDIR [DATA]
# OUTDIR receives log.txt, the benchmark rows (bench.json) and, with DATA, the encoder and its sidecar.
set -u -o pipefail
out=${1:?usage: bash bench/gpu_check.sh OUTDIR [DATA]}
data=${2:-}
budget=${PRETRAIN_SECONDS:-120}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp=$(mktemp)  # benchmark results newer than this are this run's
runs=$(mktemp -d)
export PYTHONUNBUFFERED=1 DISTILL_RUNS=$runs
exec > >(tee "$out/log.txt") 2>&1
py=${PYTHON:-python3}

step() { echo; echo "== $1 ($(date +%T))"; }
field() { "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }  # FILE EXPRESSION of d

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, torchvision; print('torch', torch.__version__, '| torchvision', torchvision.__version__,
'|', torch.cuda.get_device_name(), '| bf16', torch.cuda.is_bf16_supported())" || exit 1

step "1. the demo story on the GPU"
timeout 300 "$py" -m bench pipeline --device cuda --repeats 1

step "2. training loops against their ceilings; bf16 against fp32"
timeout 240 "$py" -m bench distill attack simclr precision --device cuda --repeats 3

if [ -n "$data" ]; then
    step "3. SimCLR on real photos ($data), demo width"
    pretrain=("$py" -m distill_core pretrain --preset demo --data "folder:$data" --downstream "folder:$data"
              --n-train 0 --n-downstream-train 0 --n-downstream-test 0 --device cuda --knn-every 0 --quiet)
    timeout 120 "${pretrain[@]}" --epochs 4 --out "$runs/speed" || exit 1
    ips=$(field "$runs/speed/summary.json" "d['images_per_s']")
    n=$(find "$data/train" -type f | wc -l)
    epochs=$("$py" -c "print(max(4, min(800, int($budget * $ips / $n))))")
    echo "$ips images/s over 4 epochs of $n images: $epochs epochs fit $budget s"
    timeout -s INT $((budget * 2 + 120)) "${pretrain[@]}" --epochs "$epochs" --out "$runs/real"
    field "$runs/real/summary.json" \
        "{k: d[k] for k in ('ca_simclr', 'ca_random_init', 'ca_gain', 'knn_monitor', 'images_per_s', 'seconds')}"
    cp "$runs/real/encoder.safetensors" "$out/real_encoder.safetensors"
    cp "$runs/real/encoder.json" "$out/real_encoder.json" 2>/dev/null
fi

step "4. torch.compile on the distillation step"
timeout 150 "$py" -m bench compile --device cuda --repeats 3

step "done"
"$py" -c "
import json, pathlib, sys
new = [f for f in sorted(pathlib.Path('bench/results').glob('*.json')) if f.stat().st_mtime > pathlib.Path(sys.argv[2]).stat().st_mtime]
json.dump([json.loads(f.read_text()) for f in new], open(sys.argv[1], 'w'), indent=1)" "$out/bench.json" "$stamp"
ls -la "$out"
