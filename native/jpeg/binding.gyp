{
  "targets": [
    {
      "target_name": "jpeg",
      "sources": ["jpeg.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-lturbojpeg"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
