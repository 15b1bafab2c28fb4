/*
 * test_textbuf: common/textbuf's text_pack, the one-allocation copy of a few
 * strings that sessions and warehouse sessions keep for their life.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/textbuf.h"

static void test_pack(void **state)
{
    (void)state;
    char user[] = "ana", app[] = "Metabase v0.50";
    const char *v[4] = {user, NULL, app, ""};
    char *block = text_pack(v, 4);
    assert_non_null(block);
    /* the copies live in the block, in order, NULLs stay NULL */
    assert_ptr_equal(v[0], block);
    assert_null(v[1]);
    assert_ptr_equal(v[2], block + sizeof user);
    assert_ptr_equal(v[3], block + sizeof user + sizeof app);
    assert_string_equal(v[0], "ana");
    assert_string_equal(v[2], "Metabase v0.50");
    assert_string_equal(v[3], "");
    /* and do not depend on the originals */
    user[0] = 'X';
    assert_string_equal(v[0], "ana");
    free(block);
    /* nothing to copy still gives a block to free */
    const char *none[2] = {NULL, NULL};
    block = text_pack(none, 2);
    assert_non_null(block);
    assert_null(none[0]);
    free(block);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
