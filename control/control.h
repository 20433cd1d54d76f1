/*
 * control/control.h — the control plane (DESIGN.md §4): the REST API under
 * /api/v1/, /healthz, and one folder per platform module.
 *
 * weir_control_new() adds the control plane's routes to the HTTP server.
 */
#ifndef WEIR_CONTROL_H
#define WEIR_CONTROL_H

#include "core/core.h"

typedef struct weir_control weir_control;

/* Routes are added to http, which must outlive the returned object.
 * clock: time source for uptime (borrowed; NULL = system clock).
 * NULL on ENOMEM. */
weir_control *weir_control_new(weir_http *http, const weir_clock *clock);
void weir_control_free(weir_control *control);

#endif
