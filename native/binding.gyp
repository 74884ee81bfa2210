{
  "variables": {
    "dnnl%": "<!(node -p \"!process.env.GELORA_NO_DNNL && require('fs').existsSync('/usr/include/oneapi/dnnl/dnnl.hpp') ? 1 : 0\")",
    "march%": "<!(node -p \"process.env.GELORA_PORTABLE ? 'x86-64-v2' : 'native'\")",
    "openmp%": "<!(node -p \"process.env.GELORA_NO_OPENMP ? 0 : 1\")"
  },
  "targets": [
    {
      "target_name": "gelora",
      "sources": ["addon.c", "kernels.c", "knn.c"],
      "cflags": ["-O3", "-march=<(march)", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function"],
      "libraries": ["-lopenblas", "-lm", "-lpthread"],
      "conditions": [
        ["openmp==1", {
          "cflags": ["-fopenmp"],
          "ldflags": ["-fopenmp"],
          "libraries": ["-lgomp"]
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
