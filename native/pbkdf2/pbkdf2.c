/*
 * PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) for Django's pbkdf2_sha256 hashes.
 *
 * Why this exists: OpenSSL 3's PKCS5_PBKDF2_HMAC (behind node:crypto's pbkdf2) goes through the
 * EVP layer on every iteration (context copies, dispatch), which costs several times the two
 * SHA-256 compressions an iteration needs. Here the HMAC inner and outer states are computed
 * once; each iteration then hands one pre-padded 64-byte block to SHA256_Transform for the inner
 * hash and one for the outer hash, and reads the state words back directly.
 *
 * The SHA-256 primitives are OpenSSL's own, exported by the node binary (SHA-NI where the CPU
 * has it). No global state: the module is context-aware and loads in worker threads.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Transform is deprecated in 3.0 but still exported */
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BLOCK 64
#define DIGEST 32
/* Far above any real key (Django: 32 bytes); keeps a bad call from allocating without bound. */
#define MAX_KEY_LENGTH (1u << 20)

/* Big-endian store/load of a state word: SHA256_CTX.h[] holds host-order words. */
static void put_be32(uint8_t *p, uint32_t w) {
  p[0] = (uint8_t)(w >> 24);
  p[1] = (uint8_t)(w >> 16);
  p[2] = (uint8_t)(w >> 8);
  p[3] = (uint8_t)w;
}

/* A 64-byte block holding a 32-byte message already padded for a hash whose first block is the
 * HMAC key pad: 0x80, zeros, then the bit length of pad + message, (64 + 32) * 8 = 768. */
static void init_padded_block(uint8_t block[BLOCK]) {
  memset(block, 0, BLOCK);
  block[DIGEST] = 0x80;
  block[BLOCK - 2] = 0x03; /* 768 = 0x0300 */
}

/* The SHA-256 states after absorbing key ^ ipad and key ^ opad (RFC 2104). */
static void hmac_states(const uint8_t *key, size_t key_len, SHA256_CTX *inner, SHA256_CTX *outer) {
  uint8_t pad[BLOCK];
  uint8_t hashed[DIGEST];
  if (key_len > BLOCK) {
    SHA256(key, key_len, hashed);
    key = hashed;
    key_len = DIGEST;
  }
  memset(pad, 0, BLOCK);
  if (key_len > 0) memcpy(pad, key, key_len);
  for (int i = 0; i < BLOCK; i++) pad[i] ^= 0x36;
  SHA256_Init(inner);
  SHA256_Update(inner, pad, BLOCK);
  for (int i = 0; i < BLOCK; i++) pad[i] ^= 0x36 ^ 0x5c;
  SHA256_Init(outer);
  SHA256_Update(outer, pad, BLOCK);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(hashed, sizeof hashed);
}

static void derive(const uint8_t *password, size_t password_len, const uint8_t *salt, size_t salt_len,
                   uint32_t iterations, uint8_t *out, size_t out_len) {
  SHA256_CTX inner, outer, ctx;
  uint8_t inner_block[BLOCK], outer_block[BLOCK], u[DIGEST];
  uint32_t t[8];
  hmac_states(password, password_len, &inner, &outer);
  init_padded_block(inner_block);
  init_padded_block(outer_block);

  for (uint32_t index = 1; out_len > 0; index++) {
    /* U1 = HMAC(P, S || INT(index)): the salt may be any length, so the ordinary update path. */
    uint8_t be_index[4];
    put_be32(be_index, index);
    ctx = inner;
    SHA256_Update(&ctx, salt, salt_len);
    SHA256_Update(&ctx, be_index, 4);
    SHA256_Final(u, &ctx);
    ctx = outer;
    SHA256_Update(&ctx, u, DIGEST);
    SHA256_Final(u, &ctx);
    for (int w = 0; w < 8; w++)
      t[w] = (uint32_t)u[4 * w] << 24 | (uint32_t)u[4 * w + 1] << 16 | (uint32_t)u[4 * w + 2] << 8 | u[4 * w + 3];
    memcpy(inner_block, u, DIGEST);

    /* U2..Uc: two compressions each, the message always 32 bytes after a key block. */
    for (uint32_t i = 1; i < iterations; i++) {
      memcpy(ctx.h, inner.h, sizeof ctx.h);
      SHA256_Transform(&ctx, inner_block);
      for (int w = 0; w < 8; w++) put_be32(outer_block + 4 * w, ctx.h[w]);
      memcpy(ctx.h, outer.h, sizeof ctx.h);
      SHA256_Transform(&ctx, outer_block);
      for (int w = 0; w < 8; w++) {
        t[w] ^= ctx.h[w];
        put_be32(inner_block + 4 * w, ctx.h[w]);
      }
    }

    uint8_t t_bytes[DIGEST];
    for (int w = 0; w < 8; w++) put_be32(t_bytes + 4 * w, t[w]);
    size_t n = out_len < DIGEST ? out_len : DIGEST;
    memcpy(out, t_bytes, n);
    out += n;
    out_len -= n;
    OPENSSL_cleanse(t_bytes, sizeof t_bytes);
  }

  OPENSSL_cleanse(&inner, sizeof inner);
  OPENSSL_cleanse(&outer, sizeof outer);
  OPENSSL_cleanse(&ctx, sizeof ctx);
  OPENSSL_cleanse(inner_block, sizeof inner_block);
  OPENSSL_cleanse(outer_block, sizeof outer_block);
  OPENSSL_cleanse(u, sizeof u);
  OPENSSL_cleanse(t, sizeof t);
}

/* Reads an integer argument in [min, max]; throws and returns 0 when it is not one. */
static int get_integer(napi_env env, napi_value value, const char *name, double min, double max,
                       double *result) {
  napi_valuetype type;
  char message[96];
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) {
    snprintf(message, sizeof message, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  napi_get_value_double(env, value, result);
  if (!(*result >= min && *result <= max) || *result != (double)(uint64_t)*result) {
    snprintf(message, sizeof message, "%s must be an integer from %.0f to %.0f", name, min, max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return 0;
  }
  return 1;
}

static int get_bytes(napi_env env, napi_value value, const char *name, void **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, data, length) != napi_ok) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Buffer or Uint8Array", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  return 1;
}

/* pbkdf2Sha256(password: Buffer, salt: Buffer, iterations: number, keyLength: number): Buffer */
static napi_value pbkdf2_sha256(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS",
                          "pbkdf2Sha256(password, salt, iterations, keyLength) takes 4 arguments");
    return NULL;
  }
  void *password, *salt, *out;
  size_t password_len, salt_len;
  double iterations, key_length;
  if (!get_bytes(env, argv[0], "password", &password, &password_len)) return NULL;
  if (!get_bytes(env, argv[1], "salt", &salt, &salt_len)) return NULL;
  if (!get_integer(env, argv[2], "iterations", 1, 4294967295.0, &iterations)) return NULL;
  if (!get_integer(env, argv[3], "keyLength", 1, MAX_KEY_LENGTH, &key_length)) return NULL;
  napi_value result;
  if (napi_create_buffer(env, (size_t)key_length, &out, &result) != napi_ok) {
    napi_throw_error(env, NULL, "could not allocate the key");
    return NULL;
  }
  /* An empty Buffer may report a NULL pointer: give the hash a valid one. */
  static const uint8_t empty[1] = {0};
  derive(password ? password : (void *)empty, password_len, salt ? salt : (void *)empty, salt_len,
         (uint32_t)iterations, out, (size_t)key_length);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "pbkdf2Sha256", NAPI_AUTO_LENGTH, pbkdf2_sha256, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "pbkdf2Sha256", fn) != napi_ok)
    return NULL;
  return exports;
}
