/*
 * control/metrics/exporter.h — private to control/: GET /metrics and the
 * series the control plane owns (process, bus, database pool).
 *
 * The Prometheus client itself is core/metrics.h, so every module can count
 * on its hot path without depending on control/; this file only serves the
 * registry and adds the scrape-time series.
 */
#ifndef WEIR_CONTROL_METRICS_EXPORTER_H
#define WEIR_CONTROL_METRICS_EXPORTER_H

#include "core/core.h"
#include "control/dbpool/dbpool.h"

typedef struct weir_exporter {
    weir_metrics *reg;
    weir_bus *bus;
    weir_dbpool *db;
    weir_metric *families[8];       /* callbacks we registered, to unregister */
    int nfamilies;
} weir_exporter;

/* Registers the series and the /metrics route.  All pointers borrowed; bus
 * and db may be NULL. */
int weir_exporter_init(weir_exporter *e, weir_metrics *reg, weir_http *http, weir_bus *bus,
                       weir_dbpool *db);
/* Unregisters the callbacks (their arguments are about to go away). */
void weir_exporter_fini(weir_exporter *e);

#endif
