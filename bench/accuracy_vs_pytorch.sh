#!/usr/bin/env bash
# Accuracy of one training recipe in regain and in PyTorch, side by side.
#
#   bench/accuracy_vs_pytorch.sh [MODEL] [EPOCHS] [SEED] [THREADS] [OUT_DIR]
#
# Defaults: mbv2-tiny, 15 epochs, seed 1, 2 threads, bench/out/accuracy. The
# recipe is the foundation benchmark: SGD lr 0.1 momentum 0.9 Nesterov,
# weight decay 5e-4 (not on BN and biases), cosine per step, batch 128, random
# crop (pad 2) + horizontal flip, full Fashion-MNIST, final test top-1 after the
# last epoch. The two runs go one after the other (never at the same time on a
# small machine), each on THREADS threads; the table reports both accuracies,
# their difference and wall times. PyTorch is Debian's python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-mbv2-tiny}
epochs=${2:-15}
seed=${3:-1}
threads=${4:-2}
out=${5:-bench/out/accuracy}
mkdir -p "$out"

[ -x build/regain ] || scripts/build
echo "regain: training $model for $epochs epochs (log: $out/regain.log)"
start=$(date +%s.%N)
build/regain train --model "$model" --epochs "$epochs" --seed "$seed" --threads "$threads" \
  --batch 128 --lr 0.1 --momentum 0.9 --nesterov 1 --wd 5e-4 --schedule cosine \
  --crop-pad 2 --hflip 1 --out "$out/regain-run" --overwrite > "$out/regain.log" 2>&1
end=$(date +%s.%N)
echo "$start $end" > "$out/regain.time"

echo "pytorch: training $model for $epochs epochs (log: $out/pytorch.log)"
GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295 \
  /usr/bin/python3 bench/peers/train_torch.py --model "$model" --epochs "$epochs" --batch 128 \
  --lr 0.1 --momentum 0.9 --nesterov --wd 5e-4 --schedule cosine --seed "$seed" \
  --threads "$threads" --json "$out/pytorch.json" > "$out/pytorch.log" 2>&1

/usr/bin/python3 bench/accuracy_table.py "$out"
