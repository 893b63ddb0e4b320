/*
 * JPEG encoding of the captcha's RGBA pixels through libjpeg-turbo's TurboJPEG API (Debian's
 * libturbojpeg, with its SIMD DCT and colour conversion).
 *
 * Why this exists: @napi-rs/canvas encodes JPEG with Skia's bundled encoder, which here takes
 * most of a captcha's CPU (~0.2 ms of ~0.35 ms per 200×75 image on an idle core, more under
 * load); libjpeg-turbo's SIMD path does the same picture in a fraction of that.
 *
 * One compressor per addon instance (per thread: the module is context-aware and loads in
 * worker threads), freed with the instance.
 */
#include <node_api.h>
#include <stdint.h>
#include <turbojpeg.h>

#define MAX_SIDE 4096

static void free_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  if (data) tjDestroy((tjhandle)data);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* encodeRgba(pixels: Uint8Array | Uint8ClampedArray, width, height, quality) → Buffer (4:2:0) */
static napi_value encode_rgba(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4)
    return fail(env, "encodeRgba(pixels, width, height, quality)");

  bool is_typed = false;
  napi_is_typedarray(env, argv[0], &is_typed);
  if (!is_typed) return fail(env, "pixels must be a Uint8Array or Uint8ClampedArray");
  napi_typedarray_type type;
  size_t length;
  void *pixels;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &pixels, NULL, NULL) != napi_ok ||
      (type != napi_uint8_array && type != napi_uint8_clamped_array))
    return fail(env, "pixels must be a Uint8Array or Uint8ClampedArray");

  int32_t width, height, quality;
  if (napi_get_value_int32(env, argv[1], &width) != napi_ok ||
      napi_get_value_int32(env, argv[2], &height) != napi_ok ||
      napi_get_value_int32(env, argv[3], &quality) != napi_ok)
    return fail(env, "width, height and quality must be numbers");
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE)
    return fail(env, "width and height must be 1 to 4096");
  if (quality < 1 || quality > 100) return fail(env, "quality must be 1 to 100");
  if (length != (size_t)width * (size_t)height * 4) return fail(env, "pixels must hold width × height × 4 bytes");

  tjhandle handle = NULL;
  if (napi_get_instance_data(env, (void **)&handle) != napi_ok || handle == NULL) {
    handle = tjInitCompress();
    if (handle == NULL) return fail(env, "tjInitCompress failed");
    if (napi_set_instance_data(env, handle, free_handle, NULL) != napi_ok) {
      tjDestroy(handle);
      return fail(env, "could not keep the compressor");
    }
  }

  unsigned char *jpeg = NULL;
  unsigned long size = 0;
  /* RGBX: the alpha byte is ignored (a captcha is opaque). */
  if (tjCompress2(handle, (const unsigned char *)pixels, width, 0, height, TJPF_RGBX, &jpeg, &size,
                  TJSAMP_420, quality, 0) != 0) {
    if (jpeg) tjFree(jpeg);
    return fail(env, tjGetErrorStr2(handle));
  }
  napi_value result;
  napi_status status = napi_create_buffer_copy(env, size, jpeg, NULL, &result);
  tjFree(jpeg);
  if (status != napi_ok) return fail(env, "could not allocate the JPEG buffer");
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "encodeRgba", NAPI_AUTO_LENGTH, encode_rgba, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "encodeRgba", fn) != napi_ok) return NULL;
  return exports;
}
