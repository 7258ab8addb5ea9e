#!/bin/bash
# GPU call 1 (carry .devbundle/data): checks the machine, copies the data out of the checkout (the next
# call's carry replaces .devbundle/ there), cuts out the items once into a cache that sweep.py's runs share,
# runs train.py for 8 steps on CUDA (random init) and measures how many views per second the cores make.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${GPU_WORK:-/tmp/garbage-gpu}
rm -rf "$W" && mkdir -p "$W" && cp -r .devbundle/data "$W/data"
D=$W/data
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, scipy, PIL; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cpus', __import__('os').cpu_count())"
export PYTHONUNBUFFERED=1
start=$(date +%s)
python3 training/python/train.py --train $D/trashnet/train --val $D/trashnet/val --muell $D/muell \
  --backgrounds $D/bg --out $W/smoke --items-cache $W/items.pkl --no-pretrained --epochs 1 --final-epochs 1 \
  --steps 4 --batch 16 --workers 15 --threads 2 --eval $D/trashnet/val 2>&1 | tee $W/smoke.log
echo "smoke run with item cutting: $(( $(date +%s) - start )) s"
python3 training/gpu/view-rate.py --items $W/items.pkl --backgrounds $D/bg --size 144 --procs 15 --seconds 12 \
  | tee $W/view-rate.txt
cp $W/smoke.log $W/view-rate.txt "${OUT:-/tmp}/" 2>/dev/null || true
