/*
 * control/dbpool/dbpool.h — database connections: a small DB interface and a
 * connection pool in the manner of HikariCP.
 *
 * Two layers, one header:
 *
 *   weir_db_*      one connection: exec, prepared statements with $1..$N
 *                  parameters, transactions.  Backend-neutral; each backend
 *                  (SQLite in db_sqlite.c, PostgreSQL later) is one file
 *                  behind a const table of functions (driver.h), chosen by the
 *                  URL scheme in one place.
 *   weir_dbpool_*  a bounded set of open connections shared by threads.
 *                  Blocking: call it from workers (core/work.h), never from
 *                  the I/O loop.
 *
 * A pooled connection's life:
 *
 *                     weir_dbpool_acquire
 *      create ──> IDLE ──────────────────> IN USE ──weir_dbpool_release──> IDLE
 *   (open, refill,  │  ^    (validated first if it      │   (or closed: past its
 *    or acquire     │  └──── sat idle >= 500 ms; a      │    lifetime, pool closing,
 *    with room)     │        broken one is closed and   │    or weir_dbpool_evict)
 *                   │        another taken)             v
 *                   └──housekeep: idle timeout,──>  CLOSED
 *                      max lifetime
 *
 *   transition            function
 *   create                weir_dbpool_open, weir_dbpool_acquire_at, weir_dbpool_housekeep
 *   IDLE -> IN USE        weir_dbpool_acquire_at (or handed over by release to a waiter)
 *   IN USE -> IDLE        weir_dbpool_release
 *   IN USE -> CLOSED      weir_dbpool_release (expired), weir_dbpool_evict, failed validation
 *   IDLE -> CLOSED        weir_dbpool_housekeep, weir_dbpool_acquire_at (expired), close
 *
 * Invariants:
 *   1. A connection has at most one holder: between acquire and release (or
 *      evict) it belongs to the caller alone, who may use it from one thread
 *      at a time.
 *   2. The connections open, being opened or being closed never number more
 *      than max_size: the database never sees more from one pool.
 *   3. acquire returns a connection or, once acquire_timeout has passed
 *      (measured on CLOCK_MONOTONIC, not the injected clock), ETIMEDOUT: not
 *      before, and it never hangs.  A caller that has waited 1 ms or more
 *      is handed the next released connection, oldest waiter first; before
 *      that, a newcomer may take a released connection ahead of it (which
 *      keeps a busy pool from convoying; pool.c explains).
 *   4. Migrations are applied at open, each at most once, in version order,
 *      each in its own transaction together with its schema_version row.
 *
 * Errors are 0 or a negative AVERROR code.  Nothing here logs a URL with its
 * password: userinfo and password= parameters are redacted.
 */
#ifndef WEIR_CONTROL_DBPOOL_H
#define WEIR_CONTROL_DBPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/conf.h"

/* ---- one connection ------------------------------------------------------ */

typedef struct weir_db weir_db;             /* one pooled connection */
typedef struct weir_db_stmt weir_db_stmt;   /* one prepared statement */
typedef struct weir_dbpool weir_dbpool;

/* One or more statements separated by ';', no parameters, no rows. */
int weir_db_exec(weir_db *db, const char *sql);

/* OUT: *out, owned by the caller until weir_db_finalize (before releasing
 * the connection).  Parameters are written $1..$N (SQLite takes them as
 * named parameters, PostgreSQL natively); each may appear more than once.
 * On error *out is NULL. */
int weir_db_prepare(weir_db *db, const char *sql, weir_db_stmt **out);

/* i is 1-based ($i).  Values are copied.  v NULL binds SQL NULL.
 * AVERROR(EINVAL) if the statement has no $i.  Binding after a step starts
 * the statement over (its pending rows are dropped; other values stay
 * bound), so one prepared statement can run many times. */
int weir_db_bind_text(weir_db_stmt *st, int i, const char *v);
int weir_db_bind_int64(weir_db_stmt *st, int i, int64_t v);
int weir_db_bind_blob(weir_db_stmt *st, int i, const void *p, size_t n);

/* 1: a row is ready; 0: done; < 0: error.  A UNIQUE or PRIMARY KEY violation
 * is AVERROR(EEXIST); a lock still held after the busy timeout (SQLite: 5 s)
 * is AVERROR(EBUSY).  Stepping again after 0 re-runs the statement. */
int weir_db_step(weir_db_stmt *st);

/* col is 0-based.  Pointers are owned by the statement and valid until the
 * next step or finalize.  col_text: NULL for SQL NULL.  col_blob: NULL for
 * SQL NULL; a zero-length blob gives a non-NULL pointer and *len 0. */
const char *weir_db_col_text(weir_db_stmt *st, int col);
int64_t weir_db_col_int64(weir_db_stmt *st, int col);
const void *weir_db_col_blob(weir_db_stmt *st, int col, size_t *len);
int weir_db_col_is_null(weir_db_stmt *st, int col);

void weir_db_finalize(weir_db_stmt *st);    /* NULL ok */

/* Rows inserted, updated or deleted by the last statement. */
int64_t weir_db_changes(weir_db *db);

/* A transaction.  SQLite's begin takes the write lock at once (BEGIN
 * IMMEDIATE) so that a transaction never fails half-way on lock upgrade; it
 * waits up to the busy timeout instead.  Releasing a connection inside a
 * transaction rolls it back (and logs a warning). */
int weir_db_begin(weir_db *db);
int weir_db_commit(weir_db *db);
int weir_db_rollback(weir_db *db);

/* Text of this connection's last error; owned by the connection, valid
 * until its next call.  Never NULL. */
const char *weir_db_errmsg(weir_db *db);

/* ---- migrations ---------------------------------------------------------- */

typedef struct weir_db_migration {
    int version;                /* 1..N, strictly ascending in the array */
    const char *sql;            /* one or more statements */
} weir_db_migration;

/* ---- the pool ------------------------------------------------------------ */

/* Config keys db.* (weir_dbpool_conf_table).  Durations in milliseconds. */
typedef struct weir_dbpool_settings {
    char *url;                  /* db.url; "" means sqlite:<data_dir>/weir.db */
    int64_t min_idle;           /* db.pool.min_idle (2); clamped to max_size */
    int64_t max_size;           /* db.pool.max_size (10) */
    int64_t acquire_timeout;    /* db.pool.acquire_timeout (30 s) */
    int64_t idle_timeout;       /* db.pool.idle_timeout (10 min; 0: never) */
    int64_t max_lifetime;       /* db.pool.max_lifetime (30 min; 0: none); each
                                   connection's is shortened by a random 0..2.5% */
    int64_t validation_timeout; /* db.pool.validation_timeout (5 s) */
    int64_t leak_threshold;     /* db.pool.leak_threshold (0: off) */
} weir_dbpool_settings;

extern const weir_conf_table weir_dbpool_conf_table;

/* A connection that was idle at least this long is validated before it is
 * handed out (HikariCP's aliveBypassWindow): validating one that was in use
 * a moment ago would only cost a round trip. */
#define WEIR_DBPOOL_VALIDATE_AFTER_MS 500

/* Housekeeping period when weir_dbpool_opts.housekeep_ms is 0. */
#define WEIR_DBPOOL_HOUSEKEEP_MS 30000

typedef struct weir_dbpool_opts {
    const char *url;            /* "sqlite:/path/to.db", "sqlite::memory:" (one private
                                   database per connection: use with max_size 1),
                                   "sqlite:file:NAME?mode=memory&cache=shared"; resolved,
                                   not empty.  Copied. */
    const weir_dbpool_settings *settings;   /* copied; NULL: the defaults; url ignored */
    const weir_clock *clock;    /* lifetimes, idle and leak times; NULL: system clock.
                                   Copied; must be callable from any thread. */
    const struct weir_db_driver *driver;    /* NULL: chosen by the url scheme; tests
                                               pass a stub (driver.h) */
    const weir_db_migration *migrations;    /* borrowed for the call */
    size_t nmigrations;
    /* Period of the housekeeper thread: 0: WEIR_DBPOOL_HOUSEKEEP_MS (shorter
     * when leak_threshold needs it); < 0: no thread, the caller runs
     * weir_dbpool_housekeep (tests with an injected clock). */
    int64_t housekeep_ms;
} weir_dbpool_opts;

/* Opens min_idle connections (failing if one cannot be opened), applies
 * pending migrations and starts the housekeeper.  OUT: *out, freed by
 * weir_dbpool_close; NULL on error.  AVERROR(EINVAL) on bad settings or
 * migrations, AVERROR(ENOSYS) for an unknown URL scheme, else the driver's
 * error (logged, with the URL redacted). */
int weir_dbpool_open(const weir_dbpool_opts *opts, weir_dbpool **out);

#define WEIR_DB__STR2(x) #x
#define WEIR_DB__STR(x) WEIR_DB__STR2(x)

/* Takes a connection, blocking up to acquire_timeout.  OUT: *out, owned by
 * the caller until weir_dbpool_release or weir_dbpool_evict; NULL on error.
 * site: a string with static storage (the macro passes "file.c:123"), shown
 * by leak reports.  Returns 0 or AVERROR(ETIMEDOUT); AVERROR(ESHUTDOWN)
 * while the pool closes.  Any thread but the I/O loop. */
int weir_dbpool_acquire_at(weir_dbpool *p, weir_db **out, const char *site);
#define weir_dbpool_acquire(pool, out) \
    weir_dbpool_acquire_at((pool), (out), __FILE__ ":" WEIR_DB__STR(__LINE__))

/* Gives a connection back (finalize its statements first).  It is rolled
 * back if left inside a transaction, and closed instead of kept when past
 * its lifetime.  NULL db is fine. */
void weir_dbpool_release(weir_dbpool *p, weir_db *db);
/* The caller saw the connection broken: it is closed, not reused. */
void weir_dbpool_evict(weir_dbpool *p, weir_db *db);

/* Acquisition wait times, histogram: bucket i < WEIR_DBPOOL_ACQ_BUCKETS - 1
 * counts successful acquisitions that waited less than
 * weir_dbpool_acq_bucket_us[i] microseconds and at least the bound before
 * it; the last bucket counts the rest.  Bounds: 10 us, 100 us, 1 ms, 10 ms,
 * 100 ms, 1 s, 10 s.  Counts are per bucket, not cumulative.  The wait runs
 * from when acquire found nothing ready (no idle connection that needed no
 * check) to its return, so it includes validation, connecting and waiting
 * for a release; an acquisition that found one ready is not timed and
 * counts in bucket 0. */
#define WEIR_DBPOOL_ACQ_BUCKETS 8
extern const int64_t weir_dbpool_acq_bucket_us[WEIR_DBPOOL_ACQ_BUCKETS - 1];

typedef struct weir_dbpool_stats {
    int active;                 /* held by callers */
    int idle;                   /* open, in the pool */
    int pending;                /* being opened */
    int closing;                /* out of the pool, being closed */
    int waiting;                /* callers blocked in acquire */
    int total;                  /* active + idle + pending + closing <= max_size */
    uint64_t acquired;          /* successful acquisitions */
    uint64_t timeouts;          /* acquisitions that timed out */
    uint64_t created;           /* connections opened */
    uint64_t closed;            /* connections closed, for any reason */
    uint64_t validation_failures;   /* idle connections found broken */
    uint64_t connect_failures;  /* driver connect errors */
    uint64_t leaks;             /* connections reported as leaked */
    uint64_t acquire_us_sum;    /* total wait of the acquisitions counted below */
    uint64_t acquire_us_buckets[WEIR_DBPOOL_ACQ_BUCKETS];
} weir_dbpool_stats;

/* A snapshot.  Any thread.  The counters and total, pending, closing and
 * waiting are exact at the moment of the call; active is counted while
 * other threads take and give back connections without the pool's lock, so
 * under load it (and idle = total - active - pending - closing) is
 * approximate.  With no acquire or release running, all are exact. */
void weir_dbpool_stats_get(weir_dbpool *p, weir_dbpool_stats *st);

/* Closes idle connections past their lifetime, and those idle longer than
 * idle_timeout while more than min_idle are idle (least recently used
 * first); opens connections until min_idle are idle (within max_size);
 * reports connections held longer than leak_threshold, once each, with the
 * site that acquired them.  The housekeeper thread runs it; tests call it. */
void weir_dbpool_housekeep(weir_dbpool *p);

/* Stops the housekeeper and closes every connection.  Every connection must
 * have been released first (one still held is logged and left open).  NULL
 * is fine. */
void weir_dbpool_close(weir_dbpool *p);

#endif
