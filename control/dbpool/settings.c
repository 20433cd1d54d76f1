/*
 * control/dbpool/settings.c — the db.* configuration keys.
 *
 * Defaults follow HikariCP's where they apply (30 s to get a connection,
 * 10 min idle, 30 min lifetime, 5 s validation, leak detection off), except
 * min_idle: HikariCP keeps max_size open; weir's default database is a local
 * SQLite file where opening a connection costs little, so two stay warm.
 */
#include "control/dbpool/dbpool.h"

#include <stddef.h>

#define K(field) offsetof(weir_dbpool_settings, field)
#define DAY_MS 86400000.0

static const weir_conf_key dbpool_keys[] = {
    { "db.url", WEIR_CONF_STRING, K(url), "", 0, 0, NULL,
      "database: sqlite:PATH, or postgres://USER:PASSWORD@HOST/DB; empty means"
      " sqlite:<data_dir>/weir.db.  Never printed, since it may carry a password",
      WEIR_CONF_SECRET },
    { "db.pool.min_idle", WEIR_CONF_INT, K(min_idle), "2", 0, 1000, NULL,
      "idle connections kept open and ready (at most db.pool.max_size)", 0 },
    { "db.pool.max_size", WEIR_CONF_INT, K(max_size), "10", 1, 1000, NULL,
      "most connections open at once, in use or idle", 0 },
    { "db.pool.acquire_timeout", WEIR_CONF_DURATION, K(acquire_timeout), "30s", 1, DAY_MS,
      NULL, "how long a caller waits for a connection before giving up", 0 },
    { "db.pool.idle_timeout", WEIR_CONF_DURATION, K(idle_timeout), "10m", 0, DAY_MS, NULL,
      "idle connections beyond db.pool.min_idle are closed after this; 0: never", 0 },
    { "db.pool.max_lifetime", WEIR_CONF_DURATION, K(max_lifetime), "30m", 0, 7 * DAY_MS,
      NULL, "connections are replaced after this (each up to 2.5% sooner, so they do"
      " not all go at once); 0: no limit", 0 },
    { "db.pool.validation_timeout", WEIR_CONF_DURATION, K(validation_timeout), "5s", 1,
      600000, NULL, "how long the check of an idle connection may take before it is"
      " deemed broken and replaced", 0 },
    { "db.pool.leak_threshold", WEIR_CONF_DURATION, K(leak_threshold), "0", 0, DAY_MS,
      NULL, "log a connection held longer than this, with the code that took it;"
      " 0: off", 0 },
};

const weir_conf_table weir_dbpool_conf_table = {
    .module = "dbpool",
    .keys = dbpool_keys,
    .nkeys = sizeof dbpool_keys / sizeof dbpool_keys[0],
};
