/*
 * control/dbpool/driver.h — private to control/dbpool (and its tests): the
 * table of functions a database backend provides.
 *
 * One backend per file (db_sqlite.c; db_pg.c later), each exporting one
 * const weir_db_driver.  pool.c picks one by URL scheme; db.c's weir_db_*
 * wrappers dispatch through it.  The table speaks only of connections,
 * statements with $1..$N parameters, transactions and error codes, so a
 * client/server backend fits as well as an embedded one.
 *
 * A backend's connection is an opaque `void *conn` it allocates in connect
 * and frees in disconnect.  Its statement type embeds struct weir_db_stmt
 * as its first member; the generic layer fills that header in after
 * prepare.  Every function but connect is called by the connection's one
 * holder, from one thread at a time.
 *
 * Optional entries may be NULL: the wrappers then return AVERROR(ENOSYS)
 * (a stub driver for pool tests implements connect/disconnect/validate only).
 */
#ifndef WEIR_CONTROL_DBPOOL_DRIVER_H
#define WEIR_CONTROL_DBPOOL_DRIVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "control/dbpool/dbpool.h"

typedef struct weir_db_driver weir_db_driver;

/* The header of every backend's statement. */
struct weir_db_stmt {
    const weir_db_driver *drv;
    weir_db *db;
};

/* A pooled connection: the backend's handle plus the pool's bookkeeping.
 * Only pool.c touches the fields after `conn`; tests may read conn. */
struct weir_db {
    const weir_db_driver *drv;
    void *conn;                     /* the backend's */

    /* pool.c's.  Who may touch what is in pool.c's opening comment. */
    weir_dbpool *pool;
    struct weir_db *next;           /* a list of connections to close */
    int slot;                       /* index in the pool's slots */
    int64_t created_us;             /* injected clock; fixed once pooled */
    int64_t expires_us;             /* INT64_MAX: no lifetime; fixed once pooled */
    int64_t last_used_us;           /* released at; written by the holder */
    _Atomic uint64_t lease;         /* seqlock over acquired_us and site: odd while written */
    _Atomic int64_t acquired_us;    /* INT64_MAX while not held */
    _Atomic(const char *) site;     /* who holds it (static string) */
    _Atomic uint64_t leak_lease;    /* the lease last reported as leaked */
};

struct weir_db_driver {
    const char *name;                       /* "sqlite" */
    const char *const *schemes;             /* URL schemes served, NULL-terminated */

    /* Opens a connection to url (the whole URL, scheme included; borrowed)
     * within timeout_ms where the backend can bound it.  OUT: *conn, freed
     * by disconnect.  On error, a reason without secrets in err. */
    int  (*connect)(const char *url, int64_t timeout_ms, void **conn,
                    char *err, size_t errcap);
    void (*disconnect)(void *conn);
    /* 0 if the connection answers a cheap query within timeout_ms. */
    int  (*validate)(void *conn, int64_t timeout_ms);
    /* 1 if a transaction is open (release then rolls it back).  Optional. */
    int  (*in_transaction)(void *conn);

    int  (*exec)(void *conn, const char *sql);
    int  (*begin)(void *conn);
    int  (*commit)(void *conn);
    int  (*rollback)(void *conn);
    /* Optional: run inside the migration transaction to keep other
     * processes from migrating at the same time (PostgreSQL: LOCK TABLE
     * schema_version).  NULL where begin already excludes other writers. */
    int  (*lock_schema)(void *conn);
    int64_t (*changes)(void *conn);
    const char *(*errmsg)(void *conn);

    /* OUT: *out, the backend's statement (header filled in by the caller). */
    int  (*prepare)(void *conn, const char *sql, weir_db_stmt **out);
    int  (*bind_text)(weir_db_stmt *st, int i, const char *v);
    int  (*bind_int64)(weir_db_stmt *st, int i, int64_t v);
    int  (*bind_blob)(weir_db_stmt *st, int i, const void *p, size_t n);
    int  (*step)(weir_db_stmt *st);
    const char *(*col_text)(weir_db_stmt *st, int col);
    int64_t (*col_int64)(weir_db_stmt *st, int col);
    const void *(*col_blob)(weir_db_stmt *st, int col, size_t *len);
    int  (*col_is_null)(weir_db_stmt *st, int col);
    void (*finalize)(weir_db_stmt *st);
};

extern const weir_db_driver weir_db_driver_sqlite;

/* db.c: applies the pending migrations on db (see weir_dbpool_open). */
int weir_db__migrate(weir_db *db, const weir_db_migration *m, size_t n);

#endif
