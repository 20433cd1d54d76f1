/*
 * core/buf.h — refcounted immutable byte buffers, and the "media object" the
 * packager hands the origin.
 *
 * Segments, parts, init segments and playlists are built once into a
 * weir_buf and then shared: the packager's store keeps one reference, and
 * every HTTP response that sends it holds another until the bytes are out.
 * Nothing copies them to share them (DESIGN.md §3, Ownership).
 *
 *   weir_buf_new(n)   -> refs 1, writable by its creator until shared
 *   weir_buf_ref()    -> one more holder (any thread)
 *   weir_buf_unref()  -> the last one frees it (any thread)
 *
 * Large buffers (WEIR_BUF_FILE_MIN and up) live in a memfd mapped shared,
 * so that the origin can hand them to sendfile(2): the kernel then takes
 * the pages by reference instead of copying every byte from user memory
 * into the socket (the copy that kept a 250 KB segment at 0.8x nginx's
 * sendfile).  The bytes of data[] are at file offset weir_buf_fd_off(b) in
 * b->fd.  A memfd is never written after its creator shared it and never
 * reused, so pages still queued in a socket never change under it.  Should
 * memfd_create fail (no descriptors left), the buffer is plain memory with
 * fd -1; every user must cope with that.
 */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct weir_buf {
    size_t size;
    int refs;                       /* atomic; use the functions below */
    int fd;                         /* memfd holding this struct and data, or -1 */
    uint8_t data[];
} weir_buf;

#define WEIR_BUF_FILE_MIN ((size_t)64 * 1024)
/* memfd buffers alive at once; past it new ones are plain memory, so that
 * a large live window never takes the descriptors connections need. */
#define WEIR_BUF_FILE_MAX_OPEN 4096

/* Where data[0] is in b->fd (meaningful when b->fd >= 0). */
#define weir_buf_fd_off(b) ((uint64_t)offsetof(weir_buf, data))

/* A buffer of size bytes (contents undefined), refs 1; NULL on ENOMEM. */
weir_buf *weir_buf_new(size_t size);
/* A new buffer holding a copy of data[0..size-1]; NULL on ENOMEM. */
weir_buf *weir_buf_copy(const void *data, size_t size);
/* Returns b with one more reference. */
weir_buf *weir_buf_ref(weir_buf *b);
/* Drops one reference; frees at zero.  NULL is a no-op. */
void weir_buf_unref(weir_buf *b);

/* How long caches may keep an object (the origin turns it into headers). */
typedef enum weir_cache_class {
    WEIR_CACHE_IMMUTABLE,           /* segments, parts, init segments: a year, immutable */
    WEIR_CACHE_LIVE,                /* live media playlists and MPDs: max_age_ms */
    WEIR_CACHE_MASTER,              /* master playlists: a few seconds */
    WEIR_CACHE_VOD,                 /* finished playlists: long */
} weir_cache_class;

/* One thing a player can fetch.  The producer fills it with a new reference
 * to body, which the consumer drops (weir_object_clear). */
typedef struct weir_object {
    weir_buf *body;
    const char *content_type;       /* static string */
    weir_cache_class cache;
    int64_t max_age_ms;             /* WEIR_CACHE_LIVE only */
    int64_t mtime_ms;               /* Unix ms when it was produced (Last-Modified) */
    uint64_t etag;                  /* changes whenever the bytes change */
    int redirect;                   /* body is a URL path: answer 301 to it (DVR
                                       segments that live on in a recording) */
} weir_object;

void weir_object_clear(weir_object *o);

/* What a request asks beyond the path: the LL-HLS delivery directives of
 * RFC 8216bis 6.2.5 (a playlist that contains a given part; a delta
 * playlist).  -1 means absent. */
typedef struct weir_object_query {
    int64_t msn;                    /* _HLS_msn */
    int64_t part;                   /* _HLS_part */
    int skip;                       /* _HLS_skip: 0 no, 1 YES, 2 v2 */
} weir_object_query;

#define WEIR_OBJECT_QUERY_NONE ((weir_object_query){ .msn = -1, .part = -1, .skip = 0 })

/* Finds the object at path (relative to its mount, e.g. "cam1/index.m3u8").
 * Runs on the loop thread.  0 with *out filled; AVERROR(ENOENT) when there
 * is no such object (404); AVERROR(ESTALE) when it existed but is gone, a
 * segment that fell out of the live window (410); AVERROR(EAGAIN) when it
 * will exist soon (a playlist that does not yet reach q's part, the part a
 * preload hint names): the caller holds the request and asks again when
 * the producer says the mount changed; AVERROR(EINVAL) for a query that
 * cannot be satisfied (an _HLS_msn too far ahead: 400). */
typedef int (*weir_object_lookup_fn)(void *arg, const char *path, const weir_object_query *q,
                                     weir_object *out);

#endif
