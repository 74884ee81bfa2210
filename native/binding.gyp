{
  "variables": {
    "dnnl%": "<!(node -p \"!process.env.GELORA_NO_DNNL && require('fs').existsSync('/usr/include/oneapi/dnnl/dnnl.hpp') ? 1 : 0\")",
    "march%": "<!(node -p \"process.env.GELORA_MARCH || (process.env.GELORA_PORTABLE ? 'x86-64-v2' : 'native')\")",
    # GCC vectorises loops 256 bits wide by default even under -march=native on AVX-512 CPUs (to spare
    # older Xeons' frequency drops); 512-bit loops measured faster on an AMX Xeon (bench lora-step mini
    # fp32 --profile, alternating builds: GELU forward + backward 24 -> 17 ms a step) and give the same
    # bits (element-wise loops and fixed-lane sums do not depend on the width). No effect without
    # AVX-512 (x86-64-v2 prebuilds, AVX2 CPUs). GELORA_VECTOR_WIDTH=256 restores GCC's default.
    "vector_width%": "<!(node -p \"process.env.GELORA_VECTOR_WIDTH || 512\")",
    "openmp%": "<!(node -p \"process.env.GELORA_NO_OPENMP ? 0 : 1\")",
    "openblas_omp%": "<!(node -p \"[process.arch === 'arm64' ? 'aarch64' : 'x86_64'].map((a) => '/usr/lib/' + a + '-linux-gnu/openblas-openmp').find((d) => require('fs').existsSync(d + '/libopenblas.so.0')) || ''\")"
  },
  "targets": [
    {
      "target_name": "gelora",
      "sources": ["addon.c", "kernels.c", "knn.c"],
      "cflags": ["-O3", "-march=<(march)", "-fno-math-errno", "-fno-trapping-math", "-mprefer-vector-width=<(vector_width)", "-Wall", "-Wno-unused-function"],
      "libraries": ["-lopenblas", "-lm", "-lpthread"],
      "conditions": [
        ["openmp==1", {
          "cflags": ["-fopenmp"],
          "ldflags": ["-fopenmp"],
          "libraries": ["-lgomp"]
        }],
        # Debian's OpenMP build of OpenBLAS (libopenblas0-openmp), found first at run time where it is
        # installed: its threads are OpenMP's, the pool the element-wise kernels and oneDNN use, so the
        # two libraries no longer spin against each other on the same cores (kernels.c: k_gemm_batched)
        ["openmp==1 and openblas_omp!=''", {
          "ldflags": ["-Wl,-rpath,<(openblas_omp)"]
        }],
        ["dnnl==1", {
          "sources": ["dnnl.cc"],
          "defines": ["GELORA_DNNL"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
          "cflags_cc": ["-std=c++17", "-fexceptions"],
          "libraries": ["-ldnnl", "-lgomp"]
        }]
      ]
    }
  ]
}
