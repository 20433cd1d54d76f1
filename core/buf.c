/*
 * core/buf.c — see buf.h.
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

weir_buf *weir_buf_new(size_t size)
{
    weir_buf *b;

    if (size > SIZE_MAX - sizeof *b)
        return NULL;
    b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    b->refs = 1;
    return b;
}

weir_buf *weir_buf_copy(const void *data, size_t size)
{
    weir_buf *b = weir_buf_new(size);
    if (b && size)
        memcpy(b->data, data, size);
    return b;
}

weir_buf *weir_buf_ref(weir_buf *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void weir_buf_unref(weir_buf *b)
{
    if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(b);
}

void weir_object_clear(weir_object *o)
{
    weir_buf_unref(o->body);
    o->body = NULL;
}
