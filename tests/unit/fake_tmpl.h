/*
 * Fake audit templates for the guard's unit tests: a counter of live
 * references, and an address to hand out (the guard never looks inside).
 */
#ifndef MARTGATE_TEST_FAKE_TMPL_H
#define MARTGATE_TEST_FAKE_TMPL_H

#include "proxy/guard.h"

static int live_refs;
static struct trail_tmpl *fake_ref(struct trail_tmpl *t)
{
    live_refs++;
    return t;
}
static void fake_release(struct trail_tmpl *t)
{
    (void)t;
    live_refs--;
}
static const guard_tmpl_ops fake_ops = {.ref = fake_ref, .release = fake_release};
static char tmpl_storage;

#endif
