/* The experiment store's SQLite schema, shared by the store (which creates
 * and writes it) and the report (which reads it). */
#ifndef REGAIN_STORE_SCHEMA_H
#define REGAIN_STORE_SCHEMA_H

/* Bumped whenever a table changes; kept in PRAGMA user_version. Version
 * 1 lacked comparisons.reference, version 2 runs.imported_from, version 3
 * the ctime and inode of file_hashes, version 4 environment.blas_core: the
 * store adds them when it opens such a file for writing
 * (rg_store_schema_upgrades; the cached checksums are then taken again),
 * and readers of an older file read it as having no references, no
 * imported runs and no BLAS cores. */
#define RG_STORE_SCHEMA_VERSION 5

/* The first version that has a column, for readers of older files. */
#define RG_STORE_SINCE_REFERENCE 2  /* comparisons.reference */
#define RG_STORE_SINCE_BLAS_CORE 5  /* environment.blas_core */
#define RG_STORE_SINCE_IMPORTED 3   /* runs.imported_from */
#define RG_STORE_SINCE_FILE_STAMP 4 /* file_hashes.ctime_ns and inode */

/* CREATE TABLE IF NOT EXISTS statements, executable with sqlite3_exec. */
extern const char rg_store_schema_sql[];
/* [v]: from version v to v + 1 (v >= 1), executable with sqlite3_exec. */
extern const char *const rg_store_schema_upgrades[RG_STORE_SCHEMA_VERSION];

#endif
