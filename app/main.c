/*
 * app/main.c — the weir command line.
 *
 *   weir serve [-c FILE] [--set section.key=value]...
 *   weir config check FILE [--set ...]
 *   weir config dump [-c FILE] [--set ...]
 *   weir upload FILE [--name N] [--server URL] [--token T] [--resume URL]
 *               [--chunk-size SIZE] [--limit-rate RATE]
 *   weir version
 *   weir help
 *
 * Every subcommand takes -c and --set, so a script can point any of them at
 * another data_dir.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: weir <command> [-c FILE] [--set section.key=value]...\n"
    "\n"
    "commands:\n"
    "  serve               run the server (built-in defaults are config/weir.yml)\n"
    "  config check FILE   validate a config file; errors name file:line and key\n"
    "  config dump         print the effective configuration as YAML\n"
    "  keys create STREAM [--note TEXT] [--profile default|low|high]\n"
    "                      new stream key, printed once on stdout\n"
    "  keys list [--json]  stream keys (never the keys themselves)\n"
    "  keys revoke STREAM  the stream's key stops working\n"
    "  tokens create --scope read|write|admin [--name TEXT]   new API token, printed once\n"
    "  tokens list [--json] | tokens revoke ID\n"
    "  upload FILE [--name NAME] [--server http://HOST:PORT] [--token TOKEN] [--resume URL]\n"
    "         [--chunk-size 16M] [--limit-rate 10M]\n"
    "                      upload a media file (tus); prints the asset id.  The token\n"
    "                      (write scope) may come from $WEIR_TOKEN instead\n"
    "  version             print the version\n"
    "  help                print this help\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   read settings from FILE (YAML)\n"
    "  --set KEY=VALUE     override one setting, e.g. --set http.port=18080\n";

static const struct {
    const weir_conf_table *table;
    size_t offset;
} module_tables[] = {
    { &weir_core_conf_table,      offsetof(weir_settings, core) },
    { &weir_ingest_conf_table,    offsetof(weir_settings, ingest) },
    { &weir_transcode_conf_table, offsetof(weir_settings, transcode) },
    { &weir_packager_conf_table,  offsetof(weir_settings, packager) },
    { &weir_origin_conf_table,    offsetof(weir_settings, origin) },
    { &weir_dbpool_conf_table,    offsetof(weir_settings, db) },
    { &weir_uploads_conf_table,   offsetof(weir_settings, uploads) },
};

int weir_app_load_config(weir_conf *conf, weir_settings *s, const weir_cli *cli)
{
    weir_conf_errors errs = { 0 };
    int bad = 0;

    for (size_t i = 0; i < sizeof module_tables / sizeof module_tables[0]; i++) {
        if (weir_conf_register(conf, module_tables[i].table,
                               (char *)s + module_tables[i].offset) < 0) {
            fprintf(stderr, "weir: internal error: bad config table %s\n",
                    module_tables[i].table->module);
            return -1;
        }
    }
    if (cli->config_file && weir_conf_load_file(conf, cli->config_file, &errs) != 0)
        bad = 1;
    for (int i = 0; i < cli->nsets; i++)
        if (weir_conf_set(conf, cli->sets[i], &errs) != 0)
            bad = 1;
    weir_conf_errors_print(&errs, stderr);
    weir_conf_errors_free(&errs);
    if (!bad && weir_packager_settings_check(&s->packager) < 0)
        bad = 1;
    return bad ? -1 : 0;
}

/* Splits argv after the command into options and positional arguments. */
static int parse_cli(int argc, char **argv, weir_cli *cli)
{
    cli->sets = calloc((size_t)argc, sizeof *cli->sets);
    cli->args = calloc((size_t)argc, sizeof *cli->args);
    if (!cli->sets || !cli->args)
        return -1;
    int options = 1;                /* until "--" */

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options || a[0] != '-' || a[1] == '\0') {
            cli->args[cli->nargs++] = a;
        } else if (strcmp(a, "--") == 0) {
            options = 0;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i == argc) {
                fprintf(stderr, "weir: %s needs a file\n", a);
                return -1;
            }
            cli->config_file = argv[i];
        } else if (strcmp(a, "--set") == 0) {
            if (++i == argc) {
                fprintf(stderr, "weir: --set needs section.key=value\n");
                return -1;
            }
            cli->sets[cli->nsets++] = argv[i];
        } else if (strcmp(a, "--note") == 0 || strcmp(a, "--scope") == 0 ||
                   strcmp(a, "--name") == 0 || strcmp(a, "--profile") == 0 ||
                   strcmp(a, "--server") == 0 || strcmp(a, "--token") == 0 ||
                   strcmp(a, "--resume") == 0 || strcmp(a, "--chunk-size") == 0 ||
                   strcmp(a, "--limit-rate") == 0) {
            if (++i == argc) {
                fprintf(stderr, "weir: %s needs a value\n", a);
                return -1;
            }
            if (strcmp(a, "--note") == 0)
                cli->note = argv[i];
            else if (strcmp(a, "--scope") == 0)
                cli->scope = argv[i];
            else if (strcmp(a, "--profile") == 0)
                cli->profile = argv[i];
            else if (strcmp(a, "--server") == 0)
                cli->server = argv[i];
            else if (strcmp(a, "--token") == 0)
                cli->token = argv[i];
            else if (strcmp(a, "--resume") == 0)
                cli->resume = argv[i];
            else if (strcmp(a, "--chunk-size") == 0)
                cli->chunk_size = argv[i];
            else if (strcmp(a, "--limit-rate") == 0)
                cli->limit_rate = argv[i];
            else
                cli->name = argv[i];
        } else if (strcmp(a, "--json") == 0) {
            cli->json = 1;
        } else if (strncmp(a, "--set=", 6) == 0) {
            cli->sets[cli->nsets++] = a + 6;
        } else {
            fprintf(stderr, "weir: unknown option %s (put positional arguments that start "
                            "with '-' after --)\n\n%s", a, usage);
            return -1;
        }
    }
    return 0;
}

static int cmd_config(const weir_cli *cli)
{
    weir_settings s = { 0 };
    weir_conf *conf = weir_conf_new();
    weir_cli eff = *cli;
    int rc = 1;

    if (!conf)
        return 1;
    if (cli->nargs >= 2 && strcmp(cli->args[0], "check") == 0) {
        eff.config_file = cli->args[1];
        if (weir_app_load_config(conf, &s, &eff) == 0) {
            printf("%s: ok\n", eff.config_file);
            rc = 0;
        }
    } else if (cli->nargs == 1 && strcmp(cli->args[0], "dump") == 0) {
        if (weir_app_load_config(conf, &s, &eff) == 0) {
            weir_conf_dump(conf, stdout);
            rc = 0;
        }
    } else {
        fprintf(stderr, "usage: weir config check FILE | weir config dump [-c FILE]\n");
        rc = 2;
    }
    weir_conf_free(conf);
    return rc;
}

static int cmd_upload(const weir_cli *cli)
{
    weir_settings s = { 0 };
    weir_conf *conf = weir_conf_new();
    int rc = 2;

    if (conf && weir_app_load_config(conf, &s, cli) == 0)
        rc = weir_cmd_upload(cli, &s);
    weir_conf_free(conf);
    return rc;
}

int main(int argc, char **argv)
{
    weir_cli cli = { 0 };
    const char *cmd = argc > 1 ? argv[1] : "help";
    int rc;

    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("weir %s\n", WEIR_VERSION);
        return 0;
    }
    if (parse_cli(argc - 2, argv + 2, &cli) < 0) {
        rc = 2;
    } else if (strcmp(cmd, "serve") == 0) {
        rc = cli.nargs ? (fprintf(stderr, "weir: serve takes no arguments\n"), 2)
                       : weir_cmd_serve(&cli);
    } else if (strcmp(cmd, "config") == 0) {
        rc = cmd_config(&cli);
    } else if (strcmp(cmd, "keys") == 0) {
        rc = weir_cmd_keys(&cli);
    } else if (strcmp(cmd, "tokens") == 0) {
        rc = weir_cmd_tokens(&cli);
    } else if (strcmp(cmd, "upload") == 0) {
        rc = cmd_upload(&cli);
    } else {
        fprintf(stderr, "weir: unknown command '%s'\n\n%s", cmd, usage);
        rc = 2;
    }
    free(cli.sets);
    free(cli.args);
    return rc;
}
