/* The experiment store's SQLite schema, shared by the store (which creates
 * and writes it) and the report (which reads it). */
#ifndef REGAIN_STORE_SCHEMA_H
#define REGAIN_STORE_SCHEMA_H

/* Bumped whenever a table changes; kept in PRAGMA user_version. */
#define RG_STORE_SCHEMA_VERSION 1

/* CREATE TABLE IF NOT EXISTS statements, executable with sqlite3_exec. */
extern const char rg_store_schema_sql[];

#endif
