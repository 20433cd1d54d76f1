/*
 * control/api/api.h — private to control/: the API's handlers.
 */
#ifndef WEIR_CONTROL_API_H
#define WEIR_CONTROL_API_H

#include "core/core.h"

/* GET /healthz: 200 {"status":"ok","version":...,"uptime_s":...} */
typedef struct weir_api_health {
    const weir_clock *clock;
    int64_t started_us;
} weir_api_health;

int weir_api_health_init(weir_api_health *h, weir_http *http, const weir_clock *clock);

#endif
