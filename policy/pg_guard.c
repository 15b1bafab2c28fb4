/*
 * pg_guard: a PostgreSQL error handler for code that calls into libpg_query's
 * copy of the backend (the raw expression walker, the scanner). A backend
 * ERROR longjmps to PG_exception_stack; with none set, libpg_query would end
 * the process. PG_TRY cannot be used from files compiled against the server
 * headers: libpg_query keeps PG_exception_stack, error_context_stack and
 * CurrentMemoryContext thread-local while the headers declare them global.
 * This file includes no PostgreSQL header and declares them as libpg_query
 * defines them.
 */
#include <setjmp.h>
#include <stddef.h>

#include "policy/analyze_internal.h"

extern __thread sigjmp_buf *PG_exception_stack;
extern __thread void *error_context_stack;
extern __thread void *CurrentMemoryContext;

int pg_guard_call(void (*fn)(void *), void *arg)
{
    sigjmp_buf *volatile saved_handler = PG_exception_stack;
    void *volatile saved_context_stack = error_context_stack;
    void *volatile saved_memory_context = CurrentMemoryContext;
    sigjmp_buf handler;
    volatile int rc = 0;

    if (sigsetjmp(handler, 0) == 0) {
        PG_exception_stack = &handler;
        fn(arg);
    } else {
        rc = -1;
    }
    PG_exception_stack = saved_handler;
    error_context_stack = saved_context_stack;
    CurrentMemoryContext = saved_memory_context;
    return rc;
}
