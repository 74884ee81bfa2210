#!/usr/bin/env bash
# Sets gelora up on a Debian machine with Node 20: installs the system packages it lacks (OpenBLAS
# headers, OpenBLAS's OpenMP build, which the addon loads in place of the default pthreads one so that
# one thread pool runs everything, oneDNN for bf16 matrix products on AMX/AVX512-BF16, a C/C++
# toolchain for the native addon), then the npm packages, the addon and the build. The system's
# default BLAS (update-alternatives) is left as it is.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libopenblas-dev libopenblas0-openmp libdnnl-dev build-essential python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gelora setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
