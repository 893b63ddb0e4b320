{
  "targets": [
    {
      "target_name": "pbkdf2",
      "sources": ["pbkdf2.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
