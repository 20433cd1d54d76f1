/*
 * tests/unit/ingest/bytevec.h — a byte vector for building protocol inputs
 * by hand in tests, independent of the encoders under test.
 */
#ifndef WEIR_TEST_BYTEVEC_H
#define WEIR_TEST_BYTEVEC_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <libavutil/intreadwrite.h>

typedef struct vec {
    uint8_t d[1 << 17];
    size_t n;
} vec;

static inline void put(vec *v, const void *p, size_t n)
{
    cr_assert_leq(v->n + n, sizeof v->d);
    memcpy(v->d + v->n, p, n);
    v->n += n;
}
static inline void put8(vec *v, uint8_t b) { put(v, &b, 1); }
static inline void put16(vec *v, uint16_t x) { uint8_t t[2]; AV_WB16(t, x); put(v, t, 2); }
static inline void put24(vec *v, uint32_t x) { uint8_t t[3]; AV_WB24(t, x); put(v, t, 3); }
static inline void put32(vec *v, uint32_t x) { uint8_t t[4]; AV_WB32(t, x); put(v, t, 4); }
static inline void putle32(vec *v, uint32_t x) { uint8_t t[4]; AV_WL32(t, x); put(v, t, 4); }

#endif
