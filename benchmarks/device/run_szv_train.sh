#!/bin/bash
# graphene-szv v5 candidates trained on the GPU machine (issue 13, session 35): calculators/graphene-szv/train_v5g*.yaml
# (v4's three members fine-tuned at batch 16), the three runs side by side on the one GPU, packed under $OUT with
# benchmarks/device/pack.py. Carry: .device/train (pkgs.tar.xz and distinfo.tar.xz with ase, vesin and e3nn for the
# machine's Python, benchmarks/device/README.md), the three data folders the configs name and
# runs/szv-v4/m{0,1,2}/checkpoints/best.
set -u
T0=$(date +%s)
source benchmarks/device/unpack.sh .device/train
mkdir -p results
for s in "" _s1 _s2; do
    timeout ${HARD_S:-175} python3 -m tracegrad_ase.cli train calculators/graphene-szv/train_v5g$s.yaml \
        > results/train_v5g$s.log 2>&1 &
done
sleep 45; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait
echo "trained after $(( $(date +%s) - T0 )) s"; tail -n 2 results/*.log
python3 benchmarks/device/pack.py $OUT results/* 'runs/szv-v5g/**/*' --part-mb 15.5 --total-mb 62 --parts 7
echo "packed after $(( $(date +%s) - T0 )) s"
