/*
 * test_crypto.c - SHA-256 (FIPS 180-4 examples), HMAC-SHA256 (RFC 4231), ChaCha20 (RFC 8439
 * 2.4.2) and the secret box: round trip, tamper detection, wrong key, key file mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_sha256(void **st)
{
    uint8_t d[32];
    char h[65];
    sl_sha256_once("abc", 3, d);
    hex(d, 32, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sl_sha256_once("", 0, d);
    hex(d, 32, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sl_sha256_once(m, strlen(m), d);
    hex(d, 32, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in odd-sized pieces */
    sl_sha256 c;
    char buf[997];
    memset(buf, 'a', sizeof buf);
    sl_sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        sl_sha256_update(&c, buf, n);
        left -= n;
    }
    sl_sha256_final(&c, d);
    hex(d, 32, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_hmac(void **st)
{
    uint8_t key[20], d[32], big[131];
    char h[65];
    memset(key, 0x0b, sizeof key);
    sl_hmac_sha256(key, sizeof key, "Hi There", 8, d);   /* RFC 4231 test case 1 */
    hex(d, 32, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    sl_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, d);   /* case 2 */
    hex(d, 32, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(big, 0xaa, sizeof big);   /* case 6: key longer than the block */
    const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
    sl_hmac_sha256(big, sizeof big, m, strlen(m), d);
    hex(d, 32, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_chacha20(void **st)
{
    uint8_t key[32], nonce[12] = { 0, 0, 0, 0, 0, 0, 0, 0x4a, 0, 0, 0, 0 };
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    const char *pt = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
                     "for the future, sunscreen would be it.";
    size_t n = strlen(pt);
    uint8_t ct[128], back[128];
    char h[260];
    sl_chacha20_xor(key, nonce, 1, (const uint8_t *)pt, ct, n);
    hex(ct, 16, h);
    assert_string_equal(h, "6e2e359a2568f98041ba0728dd0d6981");
    hex(ct + n - 10, 10, h);
    assert_string_equal(h, "b40b8eedf2785e42874d");   /* last bytes of RFC 8439 2.4.2 */
    sl_chacha20_xor(key, nonce, 1, ct, back, n);
    assert_memory_equal(back, pt, n);
}

static void test_secret_box(void **st)
{
    char dir[] = "/tmp/sl-crypto-XXXXXX", path[300];
    struct stat sb;
    sl_secret_key k1, k2, k3;
    sl_error err = { 0 };
    assert_non_null(mkdtemp(dir));
    assert_int_equal(sl_secret_key_load(dir, &k1, &err), 0);
    snprintf(path, sizeof path, "%s/secret.key", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 64);
    assert_int_equal(sl_secret_key_load(dir, &k2, &err), 0);   /* same key read back */
    assert_memory_equal(&k1, &k2, sizeof k1);

    char *s = sl_secret_seal(&k1, "p@ss word");
    assert_non_null(s);
    assert_true(strncmp(s, SL_SECRET_PREFIX, strlen(SL_SECRET_PREFIX)) == 0);
    assert_null(strstr(s, "p@ss"));
    char *s2 = sl_secret_seal(&k1, "p@ss word");
    assert_string_not_equal(s, s2);   /* fresh nonce each time */
    char *p = sl_secret_open(&k1, s, &err);
    assert_string_equal(p, "p@ss word");
    free(p);

    /* a flipped character fails authentication */
    size_t n = strlen(s);
    s[n - 6] = s[n - 6] == 'A' ? 'B' : 'A';
    assert_null(sl_secret_open(&k1, s, &err));
    assert_int_equal(err.code, SL_EINVAL);

    /* another key cannot open it */
    memset(&k3, 7, sizeof k3);
    assert_null(sl_secret_open(&k3, s2, &err));
    /* the empty string round-trips */
    char *e = sl_secret_seal(&k1, "");
    char *eo = sl_secret_open(&k1, e, &err);
    assert_string_equal(eo, "");
    free(e);
    free(eo);

    /* a key file readable by others is refused */
    chmod(path, 0644);
    assert_int_not_equal(sl_secret_key_load(dir, &k2, &err), 0);
    unlink(path);
    rmdir(dir);
    free(s);
    free(s2);
}

static void test_base64(void **st)
{
    const char *v[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                           { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *e = sl_base64_encode((const uint8_t *)v[i][0], strlen(v[i][0]));
        assert_string_equal(e, v[i][1]);
        size_t n;
        uint8_t *d = sl_base64_decode(e, &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(v[i][0]));
        assert_memory_equal(d, v[i][0], n);
        free(d);
        free(e);
    }
    size_t n;
    assert_null(sl_base64_decode("Zm9", &n));
    assert_null(sl_base64_decode("Zm9!", &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256), cmocka_unit_test(test_hmac), cmocka_unit_test(test_chacha20),
        cmocka_unit_test(test_secret_box), cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
