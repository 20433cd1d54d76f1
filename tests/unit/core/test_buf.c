/*
 * Unit tests for core/buf: small buffers are plain memory, large ones live
 * in a memfd whose bytes at weir_buf_fd_off are the buffer's (what sendfile
 * sends), and the last reference frees either kind.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"

#include <fcntl.h>

/* 1 if fd is open. */
static int fcntl_ok(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

Test(buf, small_buffers_are_plain_memory)
{
    weir_buf *b = weir_buf_copy("hello", 5);
    cr_assert_not_null(b);
    cr_assert_eq(b->fd, -1);
    cr_assert_eq(b->size, 5);
    cr_assert_eq(memcmp(b->data, "hello", 5), 0);
    weir_buf_unref(b);
}

Test(buf, large_buffers_are_readable_through_their_memfd)
{
    size_t n = WEIR_BUF_FILE_MIN + 12345;
    weir_buf *b = weir_buf_new(n), *again;
    unsigned char back[4096];
    struct stat st;
    int fd;

    cr_assert_not_null(b);
    cr_assert_geq(b->fd, 0);
    for (size_t i = 0; i < n; i++)
        b->data[i] = (unsigned char)(i * 7 + 3);
    cr_assert_eq(fstat(b->fd, &st), 0);
    cr_assert_geq((uint64_t)st.st_size, weir_buf_fd_off(b) + n);
    /* The last 4 KiB, read through the file: the same bytes. */
    cr_assert_eq(pread(b->fd, back, sizeof back, (off_t)(weir_buf_fd_off(b) + n - sizeof back)),
                 (ssize_t)sizeof back);
    cr_assert_eq(memcmp(back, b->data + n - sizeof back, sizeof back), 0);
    again = weir_buf_ref(b);
    fd = b->fd;
    weir_buf_unref(b);
    cr_assert_eq(fcntl_ok(fd), 1);
    weir_buf_unref(again);          /* the last one closes the memfd */
    cr_assert_eq(fcntl_ok(fd), 0);
}
