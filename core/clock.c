#include "core/clock.h"

#include <stdio.h>
#include <time.h>

int64_t weir_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t weir_clock_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t system_now_us(void *arg)
{
    (void)arg;
    return weir_clock_mono_us();
}

const weir_clock weir_clock_system = { .now_us = system_now_us, .arg = 0 };

void weir_clock_iso8601(int64_t unix_ms, char buf[WEIR_ISO8601_LEN])
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&secs, &tm);
    n = strftime(buf, WEIR_ISO8601_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, WEIR_ISO8601_LEN - n, ".%03dZ", (int)(unix_ms % 1000 + 1000) % 1000);
}
