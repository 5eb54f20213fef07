/* The experiment store's SQLite schema, shared by the store (which creates
 * and writes it) and the report (which reads it). */
#ifndef REGAIN_STORE_SCHEMA_H
#define REGAIN_STORE_SCHEMA_H

/* Bumped whenever a table changes; kept in PRAGMA user_version. Version
 * 1 lacked comparisons.reference: the store adds it when it opens such a
 * file for writing (rg_store_schema_upgrade_sql), and the report reads a
 * version 1 file as having no references. */
#define RG_STORE_SCHEMA_VERSION 2

/* CREATE TABLE IF NOT EXISTS statements, executable with sqlite3_exec. */
extern const char rg_store_schema_sql[];
/* From version 1 to the current version, executable with sqlite3_exec. */
extern const char rg_store_schema_upgrade_sql[];

#endif
