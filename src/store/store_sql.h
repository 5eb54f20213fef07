/* What the store's source files share: the handle and the statement
 * helpers, whose errors name the store file. Not part of the public API
 * (include/regain/store.h). */
#ifndef REGAIN_STORE_SQL_H
#define REGAIN_STORE_SQL_H

#include <sqlite3.h>
#include <stddef.h>

#include "regain/store.h"

struct rg_store {
    sqlite3 *db;
    char path[1024];
    int read_only;
    int version;            /* the file's schema version (older only when read-only) */
};

/* An rg_error from the connection's last SQLite error, naming the store and
 * what failed. */
rg_status store_fail(const rg_store *s, rg_error *err, const char *what);
rg_status store_prepare(rg_store *s, const char *sql, sqlite3_stmt **stmt, rg_error *err);
/* Runs a statement that returns no rows. types: one letter per parameter,
 * "t" text (NULL binds NULL), "i" int64, "d" double (NaN binds NULL), "n"
 * NULL. */
rg_status store_exec(rg_store *s, rg_error *err, const char *sql, const char *types, ...);
/* Prepares and binds (as store_exec) a query whose rows the caller steps
 * through and finalizes. */
rg_status store_query(rg_store *s, sqlite3_stmt **out, rg_error *err, const char *sql, const char *types, ...);
/* Column i as text ("" for NULL) / as a double (missing for NULL). */
void store_col_text(sqlite3_stmt *st, int i, char *buf, size_t size);
double store_col_double(sqlite3_stmt *st, int i, double missing);

#endif
