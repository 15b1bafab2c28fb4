/*
 * Unit tests for proxy/config: a valid file loads with its defaults, and every
 * kind of mistake is refused with the file, line and field in the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/config.h"

static char dir[] = "/tmp/martgate-test-config-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_file("jwt.secret", "0123456789abcdef0123456789abcdef-test-secret\n");
    write_file("svc.pass", "s3cret\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define AUTH "\"auth\": {\"keys\": [{\"hmac_secret_file\": \"jwt.secret\", \"algorithms\": [\"HS256\"]}]}"
#define DBS "\"databases\": {\"app\": {\"conninfo\": \"host=127.0.0.1 dbname=app\", \"password_file\": \"svc.pass\"}}"

/* Loads text as martgate.json; returns the config or NULL with err. */
static config *load(const char *text, char *err, size_t errlen)
{
    write_file("martgate.json", text);
    char path[256];
    snprintf(path, sizeof path, "%s/martgate.json", dir);
    return config_load(path, err, errlen);
}

static void test_valid_with_defaults(void **state)
{
    (void)state;
    char err[1024] = "";
    config *c = load("{\n \"listen\": [\"127.0.0.1:6432\", \"[::1]:6432\"],\n"
                     " \"tls\": {\"allow_plaintext\": true},\n " AUTH ",\n " DBS "\n}\n",
                     err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[1], "[::1]:6432");
    assert_null(c->ssl_ctx);
    assert_true(c->allow_plaintext);
    assert_int_equal(c->max_clients, 1000);
    assert_int_equal(c->max_message_bytes, 1u << 20);
    assert_int_equal(c->login_timeout_s, 10);
    const config_database *db = config_find_database(c, "app");
    assert_non_null(db);
    assert_string_equal(db->password, "s3cret");
    assert_null(config_find_database(c, "other"));
    config_unref(c);
}

/* Each bad config must fail with all of `expect` in the message. */
static void expect_error(const char *text, const char *const *expect)
{
    char err[1024] = "";
    config *c = load(text, err, sizeof err);
    if (c) {
        config_unref(c);
        fail_msg("loaded although it should not: %s", text);
    }
    for (const char *const *e = expect; *e; e++)
        if (!strstr(err, *e))
            fail_msg("error '%s' does not mention '%s'", err, *e);
}

static void test_unknown_top_level_key(void **state)
{
    (void)state;
    expect_error("{\n \"listen\": [\"127.0.0.1:6432\"],\n \"tls\": {\"allow_plaintext\": true},\n"
                 " " AUTH ",\n " DBS ",\n \"limts\": {}\n}\n",
                 (const char *const[]){"martgate.json:6:", "unknown key 'limts'", NULL});
}

static void test_pending_limits(void **state)
{
    (void)state;
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ",\n"
                 "\"limits\": {\"max_pending_per_address\": 0}}",
                 (const char *const[]){":2:", "max_pending_per_address", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ",\n"
                 "\"limits\": {\"max_pending_logins\": \"many\"}}",
                 (const char *const[]){":2:", "max_pending_logins", NULL});
    char err[1024] = "";
    config *c = load("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ", "
                     "\"limits\": {\"max_pending_logins\": 7}}", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->max_pending_logins, 7);
    assert_int_equal(c->max_pending_per_address, 64);
    config_unref(c);
}

static void test_bad_listen(void **state)
{
    (void)state;
    expect_error("{\"listen\": [\"localhost\"], \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
                 (const char *const[]){"listen", "not host:port", NULL});
    expect_error("{\"listen\": [], \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
                 (const char *const[]){"listen", "at least one", NULL});
}

/* workers: one per core by default, 1 to 32 (what a cancel key can name) */
static void test_workers(void **state)
{
    (void)state;
    char err[1024] = "";
    config *c = load("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
                     err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c->workers, cores < 1 ? 1 : cores > 32 ? 32 : cores);
    config_unref(c);
    c = load("{\"listen\": \"127.0.0.1:1\", \"workers\": 32, \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
             err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->workers, 32);
    config_unref(c);
    expect_error("{\"listen\": \"127.0.0.1:1\",\n\"workers\": 33, \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
                 (const char *const[]){":2:", "workers", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\",\n\"workers\": 0, \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}",
                 (const char *const[]){":2:", "workers", NULL});
}

static void test_metrics_section(void **state)
{
    (void)state;
    const char *base = "{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ",\n";
    char text[1024];
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"localhost\"}}", base);
    expect_error(text, (const char *const[]){":2:", "metrics.listen", "not host:port", NULL});
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"127.0.0.1:9187\", \"ready_warehouse_seconds\": 1}}", base);
    expect_error(text, (const char *const[]){":2:", "ready_warehouse_seconds", NULL});
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"127.0.0.1:9187\", \"token\": \"x\"}}", base);
    expect_error(text, (const char *const[]){":2:", "token", NULL});
    write_file("short.token", "abc\n");
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"127.0.0.1:9187\", \"token_file\": \"short.token\"}}", base);
    expect_error(text, (const char *const[]){":2:", "token_file", "shorter than 16", NULL});
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"127.0.0.1:9187\", \"token_file\": \"nowhere.token\"}}", base);
    expect_error(text, (const char *const[]){":2:", "token_file", "nowhere.token", NULL});
    write_file("good.token", "0123456789abcdef0123\n");
    snprintf(text, sizeof text, "%s\"metrics\": {\"listen\": \"[::1]:9187\", \"token_file\": \"good.token\"}}", base);
    char err[1024] = "";
    config *c = load(text, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->metrics_listen, "[::1]:9187");
    assert_string_equal(c->metrics_token, "0123456789abcdef0123");
    assert_int_equal(c->ready_warehouse_s, 30);
    config_unref(c);
    c = load("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS "}", err, sizeof err);
    assert_non_null(c);
    assert_null(c->metrics_listen);   /* off by default */
    config_unref(c);
}

static void test_tls_required_without_cert(void **state)
{
    (void)state;
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {}, " AUTH ", " DBS "}",
                 (const char *const[]){"tls", "nobody could connect", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"cert_file\": \"nope.crt\", \"key_file\": \"nope.key\"}, " AUTH ", " DBS "}",
                 (const char *const[]){"nope.crt", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true, \"min_version\": \"1.0\"}, " AUTH ", " DBS "}",
                 (const char *const[]){"tls.min_version", NULL});
}

static void test_databases_errors(void **state)
{
    (void)state;
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ",\n"
                 "\"databases\": {\"app\": {\"conninfo\": \"x\", \"password_env\": \"MARTGATE_TEST_UNSET_VAR\"}}}",
                 (const char *const[]){":2:", "databases.app", "MARTGATE_TEST_UNSET_VAR", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ",\n"
                 "\"databases\": {\"app\": {\"password_file\": \"svc.pass\"}}}",
                 (const char *const[]){"databases.app", "missing required key 'conninfo'", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", \"databases\": {}}",
                 (const char *const[]){"databases", NULL});
}

static void test_limits_out_of_range(void **state)
{
    (void)state;
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ",\n"
                 " \"limits\": {\"max_clients\": 0}}",
                 (const char *const[]){":2:", "limits", "'max_clients' is 0", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " AUTH ", " DBS ",\n"
                 " \"limits\": {\"max_message_bytes\": \"big\"}}",
                 (const char *const[]){"must be an integer", NULL});
}

static void test_syntax_error_and_missing_auth(void **state)
{
    (void)state;
    expect_error("{\n\"listen\": [\"127.0.0.1:1\",]\n}", (const char *const[]){"martgate.json:2:", NULL});
    expect_error("{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true}, " DBS "}",
                 (const char *const[]){"auth", "missing", NULL});
    expect_error("{\"listen\": \"a:1\", \"listen\": \"b:2\"}", (const char *const[]){"duplicate", NULL});
}

static void test_file_too_large(void **state)
{
    (void)state;
    size_t n = CONFIG_MAX_FILE_BYTES + 10;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = 0;
    expect_error(big, (const char *const[]){"more than the limit", NULL});
    free(big);
}


/* hash_mask_key_file: the keyed hash mask's key (policy/rewrite.h) */
static void test_hash_mask_key_file(void **state)
{
    (void)state;
#define BASE "{\n \"listen\": [\"127.0.0.1:6432\"],\n \"tls\": {\"allow_plaintext\": true},\n " AUTH ",\n " DBS
    write_file("mask.key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    write_file("empty.key", "\n");
    write_file("short.key", "tooshort\n");
    write_file("long.key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-and-more-than-a-block\n");
    write_file("policy.json", "{\"rules\": [{\"id\": \"masked\", \"subjects\": {\"users\": \"*\"}, \"objects\": "
                              "{\"tables\": [\"m.t\"]}, \"access\": \"read\", \"columns\": {\"email\": \"hash\"}}]}");
    write_file("nohash.json", "{\"rules\": [{\"id\": \"plain\", \"subjects\": {\"users\": \"*\"}, \"objects\": "
                              "{\"tables\": [\"m.t\"]}, \"access\": \"read\"}]}");
    char err[1024] = "";
    config *c = load(BASE ",\n \"policy\": \"policy.json\",\n \"hash_mask_key_file\": \"mask.key\"\n}\n", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_non_null(c->hash_key);
    /* the pads of the key's 64 bytes, newline stripped: '0' ^ 0x36 = 06, '0' ^ 0x5c = 6c */
    assert_int_equal(strlen(c->hash_key->ipad_hex), 128);
    assert_memory_equal(c->hash_key->ipad_hex, "0607", 4);
    assert_memory_equal(c->hash_key->opad_hex, "6c6d", 4);
    config_unref(c);
    /* longer than a block: hashed first, still one block of pads */
    c = load(BASE ",\n \"hash_mask_key_file\": \"long.key\"\n}\n", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(strlen(c->hash_key->opad_hex), 128);
    assert_memory_not_equal(c->hash_key->ipad_hex, "0607", 4);
    config_unref(c);
    /* no key and no hash mask: fine, no key */
    c = load(BASE ",\n \"policy\": \"nohash.json\"\n}\n", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_null(c->hash_key);
    config_unref(c);
    /* a hash mask without a key refuses to load (start and reload) */
    expect_error(BASE ",\n \"policy\": \"policy.json\"\n}\n",
                 (const char *const[]){"martgate.json:6:", "hash_mask_key_file", "rule 'masked' (column email)", NULL});
    expect_error(BASE ",\n \"hash_mask_key_file\": \"missing.key\"\n}\n",
                 (const char *const[]){"martgate.json:6:", "hash_mask_key_file", "cannot open", "missing.key", NULL});
    expect_error(BASE ",\n \"hash_mask_key_file\": \"empty.key\"\n}\n",
                 (const char *const[]){"hash_mask_key_file", "is empty", NULL});
    expect_error(BASE ",\n \"hash_mask_key_file\": \"short.key\"\n}\n",
                 (const char *const[]){"hash_mask_key_file", "holds 8 bytes", "at least 32", NULL});
    expect_error(BASE ",\n \"hash_mask_key_file\": 7\n}\n", (const char *const[]){"hash_mask_key_file", NULL});
#undef BASE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_with_defaults),
        cmocka_unit_test(test_unknown_top_level_key),
        cmocka_unit_test(test_pending_limits),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_metrics_section),
        cmocka_unit_test(test_tls_required_without_cert),
        cmocka_unit_test(test_databases_errors),
        cmocka_unit_test(test_limits_out_of_range),
        cmocka_unit_test(test_syntax_error_and_missing_auth),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_hash_mask_key_file),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
