/*
 * crypto.c - SHA-256, HMAC-SHA256, ChaCha20 and the secret box that keeps passwords encrypted in
 * the metadata store. Written from FIPS 180-4, RFC 2104 and RFC 8439; tested with their vectors
 * (tests/unit/api/test_crypto.c).
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SHA-256 ------------------------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sl_sha256 *c, const uint8_t *p)
{
    uint32_t w[64], a, b, cc, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
    e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22);
        uint32_t mj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = S0 + mj;
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

void sl_sha256_init(sl_sha256 *c)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->nbuf = 0;
}

void sl_sha256_update(sl_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->len += len;
    if (c->nbuf) {
        size_t take = 64 - c->nbuf < len ? 64 - c->nbuf : len;
        memcpy(c->buf + c->nbuf, p, take);
        c->nbuf += take; p += take; len -= take;
        if (c->nbuf < 64)
            return;
        sha256_block(c, c->buf);
        c->nbuf = 0;
    }
    while (len >= 64) {
        sha256_block(c, p);
        p += 64; len -= 64;
    }
    memcpy(c->buf, p, len);
    c->nbuf = len;
}

void sl_sha256_final(sl_sha256 *c, uint8_t out[SL_SHA256_LEN])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    sl_sha256_update(c, &pad, 1);
    while (c->nbuf != 56)
        sl_sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sl_sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void sl_sha256_once(const void *data, size_t len, uint8_t out[SL_SHA256_LEN])
{
    sl_sha256 c;
    sl_sha256_init(&c);
    sl_sha256_update(&c, data, len);
    sl_sha256_final(&c, out);
}

/* ---- HMAC-SHA256 (RFC 2104) ----------------------------------------------------------------- */

void sl_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t len,
                    uint8_t out[SL_SHA256_LEN])
{
    uint8_t k[64] = { 0 }, pad[64], inner[SL_SHA256_LEN];
    sl_sha256 c;
    if (keylen > 64)
        sl_sha256_once(key, keylen, k);
    else
        memcpy(k, key, keylen);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sl_sha256_init(&c);
    sl_sha256_update(&c, pad, 64);
    sl_sha256_update(&c, msg, len);
    sl_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sl_sha256_init(&c);
    sl_sha256_update(&c, pad, 64);
    sl_sha256_update(&c, inner, sizeof inner);
    sl_sha256_final(&c, out);
}

/* ---- ChaCha20 (RFC 8439 section 2.3-2.4) ------------------------------------------------------ */

#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define QR(a, b, c, d) \
    a += b; d ^= a; d = ROL32(d, 16); c += d; b ^= c; b = ROL32(b, 12); \
    a += b; d ^= a; d = ROL32(d, 8);  c += d; b ^= c; b = ROL32(b, 7)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void chacha20_block(const uint32_t in[16], uint8_t out[64])
{
    uint32_t x[16];
    memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]); QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]); QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]); QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]); QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + in[i];
        out[4 * i] = (uint8_t)v; out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16); out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

void sl_chacha20_xor(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     const uint8_t *in, uint8_t *out, size_t len)
{
    uint32_t st[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };
    uint8_t ks[64];
    for (int i = 0; i < 8; i++)
        st[4 + i] = le32(key + 4 * i);
    st[12] = counter;
    st[13] = le32(nonce); st[14] = le32(nonce + 4); st[15] = le32(nonce + 8);
    while (len) {
        size_t n = len < 64 ? len : 64;
        chacha20_block(st, ks);
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] ^ ks[i];
        st[12]++;
        in += n; out += n; len -= n;
    }
}

int sl_ct_memcmp(const void *a, const void *b, size_t len)
{
    const uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d != 0;
}

/* ---- base64 --------------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sl_base64_encode(const uint8_t *d, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < len ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static int b64val(int c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

uint8_t *sl_base64_decode(const char *t, size_t *outlen)
{
    size_t n = strlen(t);
    if (n % 4)
        return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = t[i + j] == '=' && i + 4 == n && j >= 2 ? 0 : b64val((unsigned char)t[i + j]);
            if (v[j] < 0 || (j == 2 && t[i + 2] == '=' && t[i + 3] != '=')) {
                free(out);
                return NULL;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (t[i + 2] != '=')
            out[o++] = (uint8_t)(x >> 8);
        if (t[i + 3] != '=')
            out[o++] = (uint8_t)x;
    }
    *outlen = o;
    return out;
}

/* ---- secret box ----------------------------------------------------------------------------- */

int sl_secret_key_load(const char *dir, sl_secret_key *key, sl_error *err)
{
    char path[4096];
    uint8_t raw[64];
    struct stat st;
    snprintf(path, sizeof path, "%s/secret.key", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            return sl_error_set(err, SL_EIO, "no randomness for %s: %s", path, strerror(errno));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return sl_error_set(err, SL_EIO, "cannot create %s: %s", path, strerror(errno));
        if (write(fd, raw, sizeof raw) != (ssize_t)sizeof raw || fsync(fd) != 0) {
            close(fd);
            unlink(path);
            return sl_error_set(err, SL_EIO, "cannot write %s: %s", path, strerror(errno));
        }
        close(fd);
        memcpy(key->enc, raw, 32);
        memcpy(key->mac, raw + 32, 32);
        memset(raw, 0, sizeof raw);
        return 0;
    }
    if (fd < 0)
        return sl_error_set(err, SL_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        close(fd);
        return sl_error_set(err, SL_EIO, "%s must be readable by its owner only (chmod 600)", path);
    }
    ssize_t n = read(fd, raw, sizeof raw);
    close(fd);
    if (n != (ssize_t)sizeof raw)
        return sl_error_set(err, SL_EIO, "%s: expected %zu bytes", path, sizeof raw);
    memcpy(key->enc, raw, 32);
    memcpy(key->mac, raw + 32, 32);
    memset(raw, 0, sizeof raw);
    return 0;
}

char *sl_secret_seal(const sl_secret_key *key, const char *plain)
{
    size_t n = strlen(plain);
    uint8_t *buf = malloc(12 + n + SL_SHA256_LEN);
    if (!buf)
        return NULL;
    if (getrandom(buf, 12, 0) != 12) {
        free(buf);
        return NULL;
    }
    sl_chacha20_xor(key->enc, buf, 1, (const uint8_t *)plain, buf + 12, n);
    sl_hmac_sha256(key->mac, 32, buf, 12 + n, buf + 12 + n);
    char *b = sl_base64_encode(buf, 12 + n + SL_SHA256_LEN);
    free(buf);
    if (!b)
        return NULL;
    size_t pl = strlen(SL_SECRET_PREFIX), bl = strlen(b);
    char *out = malloc(pl + bl + 1);
    if (out) {
        memcpy(out, SL_SECRET_PREFIX, pl);
        memcpy(out + pl, b, bl + 1);
    }
    free(b);
    return out;
}

char *sl_secret_open(const sl_secret_key *key, const char *sealed, sl_error *err)
{
    size_t pl = strlen(SL_SECRET_PREFIX), n;
    uint8_t mac[SL_SHA256_LEN];
    if (strncmp(sealed, SL_SECRET_PREFIX, pl) != 0) {
        sl_error_set(err, SL_EINVAL, "secret is not sealed");
        return NULL;
    }
    uint8_t *raw = sl_base64_decode(sealed + pl, &n);
    if (!raw || n < 12 + SL_SHA256_LEN) {
        free(raw);
        sl_error_set(err, SL_EINVAL, "sealed secret is malformed");
        return NULL;
    }
    size_t clen = n - 12 - SL_SHA256_LEN;
    sl_hmac_sha256(key->mac, 32, raw, 12 + clen, mac);
    if (sl_ct_memcmp(mac, raw + 12 + clen, SL_SHA256_LEN) != 0) {
        free(raw);
        sl_error_set(err, SL_EINVAL, "sealed secret fails authentication (wrong key or altered)");
        return NULL;
    }
    char *out = malloc(clen + 1);
    if (out) {
        sl_chacha20_xor(key->enc, raw, 1, raw + 12, (uint8_t *)out, clen);
        out[clen] = 0;
    }
    free(raw);
    return out;
}
