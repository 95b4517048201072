/*
 * crypto.h - the little cryptography the metadata store needs to keep passwords encrypted at rest:
 * SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), ChaCha20 (RFC 8439), and a "secret box" built from
 * them (encrypt-then-MAC with independent keys) whose key lives in a 0600 file of the data dir.
 */
#ifndef SLUICE_API_CRYPTO_H
#define SLUICE_API_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "sluice/err.h"

#define SL_SHA256_LEN 32

typedef struct sl_sha256 {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    uint8_t  buf[64];
    size_t   nbuf;
} sl_sha256;

void sl_sha256_init(sl_sha256 *c);
void sl_sha256_update(sl_sha256 *c, const void *data, size_t len);
void sl_sha256_final(sl_sha256 *c, uint8_t out[SL_SHA256_LEN]);
void sl_sha256_once(const void *data, size_t len, uint8_t out[SL_SHA256_LEN]);

/* HMAC-SHA256 of msg under key (any key length). */
void sl_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t len,
                    uint8_t out[SL_SHA256_LEN]);

/* XOR len bytes of in with the ChaCha20 keystream (key 32 bytes, nonce 12 bytes, first block
 * counter `counter`) into out (in == out allowed). */
void sl_chacha20_xor(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     const uint8_t *in, uint8_t *out, size_t len);

/* Constant-time comparison: 0 if equal. */
int sl_ct_memcmp(const void *a, const void *b, size_t len);

/* ---- secret box ------------------------------------------------------------------------ */

/* 32-byte encryption key and 32-byte MAC key. */
typedef struct sl_secret_key { uint8_t enc[32], mac[32]; } sl_secret_key;

/* Read <dir>/secret.key, or create it (64 random bytes, mode 0600, O_EXCL) when absent.
 * Refuses a key file readable by group/others or of the wrong size. */
int sl_secret_key_load(const char *dir, sl_secret_key *key, sl_error *err);

/* Prefix of sealed text; anything without it is not sealed. */
#define SL_SECRET_PREFIX "$sl1$"

/* Seal plaintext: "$sl1$" + base64(nonce(12) || ciphertext || HMAC(mac, nonce || ciphertext)).
 * Returns malloc'd text (caller frees) or NULL on OOM / no randomness. Thread-safe. */
char *sl_secret_seal(const sl_secret_key *key, const char *plain);

/* Open sealed text; returns malloc'd plaintext, or NULL (err filled) if the text is not sealed
 * by this key or was altered. Thread-safe. */
char *sl_secret_open(const sl_secret_key *key, const char *sealed, sl_error *err);

/* Base64 (RFC 4648, padded). Caller frees. */
char *sl_base64_encode(const uint8_t *data, size_t len);
/* Returns malloc'd bytes and *outlen, or NULL on bad input. */
uint8_t *sl_base64_decode(const char *text, size_t *outlen);

#endif
