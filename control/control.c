/*
 * control/control.c — wires the control plane's pieces to the HTTP server.
 */
#include "control/control.h"
#include "control/api/api.h"

#include <stdlib.h>

struct weir_control {
    weir_api_health health;
};

weir_control *weir_control_new(weir_http *http, const weir_clock *clock)
{
    weir_control *control = calloc(1, sizeof *control);
    if (!control)
        return NULL;
    if (weir_api_health_init(&control->health, http, clock ? clock : &weir_clock_system) < 0) {
        free(control);
        return NULL;
    }
    return control;
}

void weir_control_free(weir_control *control)
{
    free(control);
}
