/*
 * core/clock.h — time sources.
 *
 * Components that make decisions on time take a weir_clock so tests can
 * inject one and step it by hand (no sleeps in unit tests).  The system
 * clock is weir_clock_system.
 */
#ifndef WEIR_CORE_CLOCK_H
#define WEIR_CORE_CLOCK_H

#include <stdint.h>

typedef struct weir_clock {
    int64_t (*now_us)(void *arg);   /* monotonic microseconds */
    void *arg;
} weir_clock;

extern const weir_clock weir_clock_system;

static inline int64_t weir_clock_now_us(const weir_clock *c) { return c->now_us(c->arg); }

int64_t weir_clock_mono_us(void);   /* CLOCK_MONOTONIC */
int64_t weir_clock_unix_ms(void);   /* CLOCK_REALTIME, for timestamps shown to people */

/* Formats Unix milliseconds as ISO 8601 UTC, "2026-11-29T07:00:00.123Z"
 * (HLS PROGRAM-DATE-TIME, DASH times, /time). */
#define WEIR_ISO8601_LEN 32
void weir_clock_iso8601(int64_t unix_ms, char buf[WEIR_ISO8601_LEN]);

#endif
