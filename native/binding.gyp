{
  "targets": [
    {
      "target_name": "gelora",
      "sources": ["addon.c", "kernels.c"],
      "cflags": ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function"],
      "libraries": ["-lopenblas", "-lm"]
    }
  ]
}
