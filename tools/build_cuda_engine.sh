#!/usr/bin/env bash
# Builds the CUDA engine, `target/release/genclip-engine-cuda`, on a Linux x86-64 machine that
# needs no GPU and no CUDA installation: NVIDIA's PyPI wheels supply nvcc, the headers and the
# libraries to link against. See docs/gpu.md for what the result needs at run time.
#
#   tools/build_cuda_engine.sh            # CUDA_COMPUTE_CAP=80 (Ampere and newer; what to ship)
#   CUDA_COMPUTE_CAP=90 tools/build_cuda_engine.sh   # sm_90a code: H100/H200 only
#
# It takes about 8–10 minutes of CPU cold (nvcc compiling candle's kernels is most of it), so
# it is not part of CI or of `cargo test`. What it does:
#   1. a git-ignored venv, target/cuda-toolkit/venv, with the pinned CUDA 13.0 wheels below;
#      their `nvidia/cu13` folder is shaped like a toolkit (bin, include, lib, nvvm);
#   2. completes that folder as a toolkit's would be: the unversioned names the linker wants
#      in lib/ (libcublas.so → libcublas.so.13, …) and lib/stubs/libcuda.so, a link stub
#      (SONAME libcuda.so.1) generated from cudarc's driver bindings, because no wheel ships
#      the driver library or its stub (cudarc and candle-kernels add lib/ and lib/stubs of
#      CUDA_ROOT to the link search path, for every crate that links them);
#   3. `cargo rustc --release --features cuda --bin genclip-engine` with
#      CARGO_TARGET_DIR=target/cuda, so the CPU build's artifacts stay untouched, and a RUNPATH of
#      `$ORIGIN:$ORIGIN/cuda` so the CUDA libraries may sit beside the engine or in a `cuda`
#      folder beside it (LD_LIBRARY_PATH and the system's ld.so.conf work as well);
#   4. copies the binary to target/release/genclip-engine-cuda, where `genclip bundle` finds it,
#      and prints `readelf -d` of it.
#
# Environment: CUDA_COMPUTE_CAP (default 80), PYTHON (default python3), GENCLIP_CUDA_TOOLKIT
# (where the venv goes; default target/cuda-toolkit), CARGO_BUILD_JOBS as usual.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Stay on CUDA 13.0.x: the GPU machines' driver (580) is CUDA 13.0 and cannot load PTX from a
# newer nvcc, and cudarc 0.19 knows CUDA up to 13.4 only. These are the 13.0 releases on PyPI.
wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)

toolkit=${GENCLIP_CUDA_TOOLKIT:-$root/target/cuda-toolkit}
venv=$toolkit/venv
python=${PYTHON:-python3}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}

started=$(date +%s)
echo "== CUDA wheels (venv $venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp=$venv/.genclip-wheels
if [ "$(cat "$stamp" 2>/dev/null)" != "${wheels[*]}" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wheels[@]}"
  echo "${wheels[*]}" >"$stamp"
fi
cuda=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
for needed in bin/nvcc include/cuda.h lib/libcublas.so.13 lib/libcublasLt.so.13 \
  lib/libcurand.so.10 lib/libnvrtc.so.13 lib/libcudart.so.13; do
  if [ ! -e "$cuda/$needed" ]; then
    echo "error: $needed is missing from the wheels' toolkit folder $cuda" >&2
    exit 1
  fi
done
export PATH=$cuda/bin:$PATH
export CUDA_ROOT=$cuda CUDA_PATH=$cuda CUDA_HOME=$cuda
nvcc --version | tail -2

echo "== link names in $cuda/lib"
for lib in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
  ln -sf "$lib" "$cuda/lib/${lib%%.so.*}.so"
done
stubs=$cuda/lib/stubs
mkdir -p "$stubs"
# The driver library comes with the GPU driver, never with a wheel. The linker only needs the
# names and the SONAME; at run time the driver's real libcuda.so.1 is loaded instead. Like
# NVIDIA's own stub, every entry point answers CUDA_ERROR_STUB_LIBRARY (34) if it is ever run.
if ! grep -q 'return 34' "$stubs/libcuda_stub.c" 2>/dev/null; then
  cudarc=$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
    "$venv/bin/python" -c '
import json, os, sys
packages = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in packages if p["name"] == "cudarc"))')
  sed -n 's/^pub unsafe fn \(cu[A-Za-z0-9_]*\)(.*/int \1(void) { return 34; }/p' \
    "$cudarc/src/driver/sys/mod.rs" | sort -u >"$stubs/libcuda_stub.c"
  echo "   libcuda.so stub: $(wc -l <"$stubs/libcuda_stub.c") driver entry points from $(basename "$cudarc")"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda_stub.c"
fi
# lib/ too: cudarc's build script lists only the folders that existed when it first ran.
ln -sf stubs/libcuda.so "$cuda/lib/libcuda.so"

echo "== cargo build (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, target/cuda)"
export CARGO_TARGET_DIR=$root/target/cuda
build_started=$(date +%s)
# `cargo rustc` puts the link arguments on the engine binary only (not on build scripts).
cargo rustc --release --features cuda --bin genclip-engine -- \
  -C 'link-arg=-Wl,-rpath,$ORIGIN:$ORIGIN/cuda'
build_ended=$(date +%s)

mkdir -p "$root/target/release"
cp "$CARGO_TARGET_DIR/release/genclip-engine" "$root/target/release/genclip-engine-cuda"
echo "== target/release/genclip-engine-cuda"
readelf -d "$root/target/release/genclip-engine-cuda" | grep -E 'NEEDED|RPATH|RUNPATH'
echo "cargo build: $((build_ended - build_started)) s; in all: $(($(date +%s) - started)) s"
echo "Ship the engine beside GenClip.ofx (genclip bundle picks it up); on the user's machine it"
echo "needs the NVIDIA driver's libcuda.so.1 and libcudart.so.13, libcublas.so.13,"
echo "libcublasLt.so.13, libcurand.so.10 (docs/gpu.md; genclip bundle --cuda-libs copies them)."
