/*
 * core/buf.c — see buf.h.
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* memfd buffers alive now, against WEIR_BUF_FILE_MAX_OPEN. */
static int files_open;

/* A memfd-backed buffer (see buf.h), or NULL when the kernel says no or
 * WEIR_BUF_FILE_MAX_OPEN are open (descriptors are for connections first). */
static weir_buf *buf_new_file(size_t size)
{
    size_t total = sizeof(weir_buf) + size;
    weir_buf *b;
    int fd;

    if (__atomic_add_fetch(&files_open, 1, __ATOMIC_RELAXED) > WEIR_BUF_FILE_MAX_OPEN)
        goto fail;
    if ((fd = memfd_create("weir-buf", MFD_CLOEXEC)) < 0)
        goto fail;
    if (ftruncate(fd, (off_t)total) < 0 ||
        (b = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        close(fd);
        goto fail;
    }
    b->fd = fd;
    return b;
fail:
    __atomic_sub_fetch(&files_open, 1, __ATOMIC_RELAXED);
    return NULL;
}

weir_buf *weir_buf_new(size_t size)
{
    weir_buf *b = NULL;

    if (size > SIZE_MAX - sizeof *b - 4096)
        return NULL;
    if (size >= WEIR_BUF_FILE_MIN)
        b = buf_new_file(size);
    if (!b) {
        if (!(b = malloc(sizeof *b + size)))
            return NULL;
        b->fd = -1;
    }
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
    if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (b->fd >= 0) {
        int fd = b->fd;
        munmap(b, sizeof *b + b->size);
        close(fd);
        __atomic_sub_fetch(&files_open, 1, __ATOMIC_RELAXED);
    } else {
        free(b);
    }
}

void weir_object_clear(weir_object *o)
{
    weir_buf_unref(o->body);
    o->body = NULL;
}
