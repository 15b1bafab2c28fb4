/*
 * path: see path.h.
 */
#include "common/path.h"

#include <stdlib.h>
#include <string.h>

char *path_resolve(const char *base_dir, const char *path)
{
    if (path[0] == '/' || !base_dir || !*base_dir)
        return strdup(path);
    size_t bl = strlen(base_dir), pl = strlen(path);
    char *p = malloc(bl + 1 + pl + 1);
    if (!p)
        return NULL;
    memcpy(p, base_dir, bl);
    size_t off = bl;
    if (base_dir[bl - 1] != '/')
        p[off++] = '/';
    memcpy(p + off, path, pl + 1);
    return p;
}
