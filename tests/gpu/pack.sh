#!/bin/bash
# Prepares a GPU run on a machine that has a driver, nvcc and PyTorch but none of this
# project's build dependencies and no network (tests/gpu/run.sh says how it is used):
# builds lib/, build/ameir, build/gpu/* and lib/libameir_cuda.so here, and fills .gpu-carry/
# with the runtime libraries they need (OpenBLAS, libyaml, gfortran, gomp; xz-compressed),
# the bundled data sets the GPU checks read, and torch_ref.py. Then carry lib, build/ameir,
# build/gpu and .gpu-carry to the GPU machine and run `bash tests/gpu/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s lib build/ameir gpu-tests cuda
rm -rf .gpu-carry
mkdir -p .gpu-carry/data
L=/usr/lib/x86_64-linux-gnu
tar -C "$L" -chJf .gpu-carry/libs.tar.xz libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libyaml-0.so.2 libgomp.so.1
D=${AMEIR_DATA_DIR:-../shared/data}
for d in movielens frappe amazon_beauty; do cp -r "$D/$d" .gpu-carry/data/; done
cp "${AMEIR_REF:-../shared/bench/torch_ref.py}" .gpu-carry/
du -sh .gpu-carry lib build/ameir build/gpu | sed 's/^/carry: /'
