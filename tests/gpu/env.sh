# Sourced by tests/gpu/run.sh and tests/gpu/prof.sh from the repository root: the runtime
# libraries, data and torch_ref.py that tests/gpu/pack.sh carried over (.gpu-carry), and the
# CUDA libraries of the toolkit or of PyTorch's packages. Sets ROOT and PY too.
ROOT=${ROOT:-$PWD}
PY=${PYTHON:-python3}
if [ -d .gpu-carry ]; then
  if [ -f .gpu-carry/libs.tar.xz ] && [ ! -d .gpu-carry/libs ]; then
    mkdir -p .gpu-carry/libs && tar -C .gpu-carry/libs -xJf .gpu-carry/libs.tar.xz
  fi
  export LD_LIBRARY_PATH=$ROOT/.gpu-carry/libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  [ -d .gpu-carry/data ] && export AMEIR_DATA_DIR=$ROOT/.gpu-carry/data
  [ -f .gpu-carry/torch_ref.py ] && export AMEIR_REF=$ROOT/.gpu-carry/torch_ref.py
fi
export AMEIR_DATA_DIR=${AMEIR_DATA_DIR:-$ROOT/../shared/data}
export AMEIR_REF=${AMEIR_REF:-$ROOT/../shared/bench/torch_ref.py}
# cuBLAS from the toolkit or from the Python packages (where PyTorch's copies live)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $($PY -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, x, "lib") for x in os.listdir(p)))' 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
done
export LD_LIBRARY_PATH
