/*
 * control/api/health.c — GET /healthz, for load balancers and orchestrators.
 * It answers from the loop without touching the database, so it stays fast
 * and says only "this process serves HTTP".
 */
#include "control/api/api.h"

#include <errno.h>
#include <libavutil/error.h>

static int health_get(weir_http_req *req, void *arg)
{
    weir_api_health *h = arg;
    double uptime = (double)(weir_clock_now_us(h->clock) - h->started_us) / 1e6;
    json_t *body = json_pack("{ss ss sf}", "status", "ok", "version", WEIR_VERSION,
                             "uptime_s", uptime);
    int r;

    if (!body)
        return AVERROR(ENOMEM);
    weir_http_add_header(req, "cache-control", "no-store");
    r = weir_http_respond_json(req, 200, body);
    json_decref(body);
    return r;
}

int weir_api_health_init(weir_api_health *h, weir_http *http, const weir_clock *clock)
{
    h->clock = clock;
    h->started_us = weir_clock_now_us(clock);
    return weir_http_route(http, "GET", "/healthz", 0, health_get, h);
}
