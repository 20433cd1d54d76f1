/*
 * app/app.h — private to app/: the settings of every module in one place and
 * the subcommands.  Wiring only; logic lives in the modules.
 */
#ifndef WEIR_APP_H
#define WEIR_APP_H

#include "core/core.h"
#include "ingest/ingest.h"
#include "transcode/transcode.h"
#include "packager/packager.h"
#include "origin/origin.h"
#include "control/control.h"

typedef struct weir_settings {
    weir_core_settings core;
    weir_ingest_settings ingest;
    weir_transcode_settings transcode;
    weir_packager_settings packager;
    weir_origin_settings origin;
    weir_dbpool_settings db;
    weir_uploads_settings uploads;
} weir_settings;

/* Options every subcommand takes. */
typedef struct weir_cli {
    const char *config_file;        /* -c FILE, or NULL: built-in defaults */
    const char **sets;              /* --set k=v, in order */
    int nsets;
    const char **args;              /* remaining positional arguments */
    int nargs;
    const char *note;               /* --note (keys create) */
    const char *profile;            /* --profile (keys create) */
    const char *scope;              /* --scope (tokens create) */
    const char *name;               /* --name (tokens create, upload) */
    int json;                       /* --json (list) */
    const char *server;             /* --server (upload) */
    const char *token;              /* --token (upload) */
    const char *resume;             /* --resume (upload) */
    const char *chunk_size;         /* --chunk-size (upload) */
    const char *limit_rate;         /* --limit-rate (upload) */
} weir_cli;

/* Registers every module's table over s, then applies the file and the
 * overrides.  Prints every error to stderr.  Returns 0, or -1. */
int weir_app_load_config(weir_conf *conf, weir_settings *s, const weir_cli *cli);

/* mkdir -p.  0 or -errno. */
int weir_app_make_dirs(const char *path);

int weir_cmd_serve(const weir_cli *cli);
int weir_cmd_keys(const weir_cli *cli);
int weir_cmd_tokens(const weir_cli *cli);
/* s: for the default server (http.port). */
int weir_cmd_upload(const weir_cli *cli, const weir_settings *s);

#endif
