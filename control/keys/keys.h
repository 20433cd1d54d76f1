/*
 * control/keys/keys.h — private to control/: the schema of stream keys and
 * API tokens.  The functions and the credential format are in control.h.
 */
#ifndef WEIR_CONTROL_KEYS_H
#define WEIR_CONTROL_KEYS_H

#include "control/control.h"

extern const weir_db_migration weir_keys_migrations[];
extern const size_t weir_keys_nmigrations;

/* The credential code behind keys and tokens, shared with the single-use
 * upload URLs (control/uploads): "<prefix><id:8><secret:32>", kept as a
 * random salt and SHA-256(salt || secret). */
typedef struct weir_cred {
    char text[WEIR_CRED_LEN + 1];       /* what the person gets */
    char id[9];
    unsigned char salt[16];
    unsigned char hash[32];
} weir_cred;

/* A new random credential with the 3-character prefix.  0 or AVERROR. */
int weir_cred_make(const char *prefix, weir_cred *c);
/* Checks text's shape; id gets its id and *secret points into text.  0 or -1. */
int weir_cred_split(const char *prefix, const char *text, char id[9], const char **secret);
/* 1 if secret hashes to hash with salt (constant time), else 0. */
int weir_cred_matches(const void *salt, size_t salt_len, const void *hash, size_t hash_len,
                      const char *secret);

#endif
