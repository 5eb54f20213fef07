/* The experiment store's schema (see schema.h and docs/experiments.md). */
#include "store/schema.h"

#include <stddef.h>

const char rg_store_schema_sql[] =
    /* One row per recipe experiment name; the recipe as last run. */
    "CREATE TABLE IF NOT EXISTS experiments(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT UNIQUE NOT NULL,\n"
    "  recipe_path TEXT,\n"
    "  recipe_text TEXT,\n"
    "  created_at TEXT NOT NULL,\n"
    "  updated_at TEXT NOT NULL);\n"
    /* One row per (run name, seed). config_hash is the SHA-256 of the
     * resolved configuration text plus the dataset files' checksums; a row
     * whose status is 'done' with the same hash is not run again. */
    "CREATE TABLE IF NOT EXISTS runs(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  experiment_id INTEGER NOT NULL REFERENCES experiments(id),\n"
    "  name TEXT NOT NULL,\n"
    "  seed INTEGER NOT NULL,\n"
    "  kind TEXT NOT NULL DEFAULT 'train',\n"
    "  config_hash TEXT NOT NULL,\n"
    "  config_text TEXT NOT NULL,\n"
    "  status TEXT NOT NULL CHECK(status IN ('pending','running','done','failed')),\n"
    "  run_dir TEXT,\n"
    "  error TEXT,\n"
    "  started_at TEXT,\n"
    "  finished_at TEXT,\n"
    "  wall_s REAL,\n"
    /* the results file a 'done' run was imported from (regain runs
     * import): its records came without its checkpoints */
    "  imported_from TEXT,\n"
    "  UNIQUE(experiment_id, name, seed));\n"
    "CREATE TABLE IF NOT EXISTS epoch_metrics(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch INTEGER NOT NULL,\n"
    "  lr REAL, train_loss REAL, train_top1 REAL, test_loss REAL, test_top1 REAL,\n"
    "  val_top1 REAL, seconds REAL, images_per_s REAL,\n"
    "  PRIMARY KEY(run_id, epoch));\n"
    /* Accuracies in [0, 1]; confusion is a JSON array of rows (true label)
     * of counts per predicted label. */
    "CREATE TABLE IF NOT EXISTS final_metrics(\n"
    "  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  test_top1 REAL, test_loss REAL, best_top1 REAL, best_epoch INTEGER,\n"
    "  params INTEGER, macs INTEGER, model_bytes INTEGER, latency_ms REAL,\n"
    "  train_s REAL, confusion TEXT);\n"
    "CREATE TABLE IF NOT EXISTS artifacts(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  kind TEXT NOT NULL,\n"
    "  path TEXT NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  bytes INTEGER NOT NULL,\n"
    "  PRIMARY KEY(run_id, kind));\n"
    "CREATE TABLE IF NOT EXISTS environment(\n"
    "  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  git_commit TEXT, compiler TEXT, cpu_model TEXT, cpu_features TEXT,\n"
    "  threads INTEGER, seed INTEGER, hostname TEXT, regain_version TEXT,\n"
    /* the kernels OpenBLAS ran ("SkylakeX"; regain/cpu.h): speed depends on them */
    "  blas_core TEXT);\n"
    /* Comparisons the recipe names: treatment against baseline, paired by seed. */
    "CREATE TABLE IF NOT EXISTS comparisons(\n"
    "  experiment_id INTEGER NOT NULL REFERENCES experiments(id),\n"
    "  name TEXT NOT NULL,\n"
    "  baseline TEXT NOT NULL,\n"
    "  treatment TEXT NOT NULL,\n"
    /* the run whose gap to the baseline the report measures the treatment
     * against (NULL: a distilled treatment's teacher, if any) */
    "  reference TEXT,\n"
    "  PRIMARY KEY(experiment_id, name));\n"
    /* SHA-256 of input files (datasets, specs, checkpoints) keyed by path,
     * size, modification and change times and inode (rg_file_stamp), so
     * that a 30 MB dataset is not re-read on every `regain run`. Rows
     * without a stamp (-1: from version 3, or written by an older regain
     * that had the store open while a newer one upgraded it) never match. */
    "CREATE TABLE IF NOT EXISTS file_hashes(\n"
    "  path TEXT PRIMARY KEY,\n"
    "  size INTEGER NOT NULL,\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  ctime_ns INTEGER NOT NULL DEFAULT -1,\n"
    "  inode INTEGER NOT NULL DEFAULT -1,\n"
    "  sha256 TEXT NOT NULL);\n";

const char *const rg_store_schema_upgrades[RG_STORE_SCHEMA_VERSION] = {
    NULL,
    "ALTER TABLE comparisons ADD COLUMN reference TEXT;\nPRAGMA user_version = 2;\n",
    "ALTER TABLE runs ADD COLUMN imported_from TEXT;\nPRAGMA user_version = 3;\n",
    /* the old checksums get no stamp, so they are taken again when asked */
    "ALTER TABLE file_hashes ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT -1;\n"
    "ALTER TABLE file_hashes ADD COLUMN inode INTEGER NOT NULL DEFAULT -1;\n"
    "PRAGMA user_version = 4;\n",
    "ALTER TABLE environment ADD COLUMN blas_core TEXT;\nPRAGMA user_version = 5;\n",
};
