#include "core/clock.h"

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
