/*
 * control/keys/keys.h — private to control/: the schema of stream keys and
 * API tokens.  The functions and the credential format are in control.h.
 */
#ifndef WEIR_CONTROL_KEYS_H
#define WEIR_CONTROL_KEYS_H

#include "control/control.h"

extern const weir_db_migration weir_keys_migrations[];
extern const size_t weir_keys_nmigrations;

#endif
