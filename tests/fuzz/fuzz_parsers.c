/* libFuzzer harness for every parser of user input besides the .rgm loader
 * (fuzz_rgm.c): recipes, model specs, trainer configurations, augmentation
 * specs, safetensors files and checkpoints, IDX image and label files,
 * difficulty score files, label-noise maps and results files (regain runs
 * import, into a new store for every input). The first input byte picks
 * the parser, the rest is its input. Any bytes must be rejected with an
 * error or accepted; where a parser has a writer, what it accepts must also
 * survive the round trip (format, parse again, same result): a failure
 * there aborts, so the fuzzer reports it. Built by the optional CMake target
 * fuzz_parsers (clang with -fsanitize=fuzzer only; not part of ctest):
 *
 *     cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang
 *     cmake --build build-fuzz --target fuzz_parsers
 *     ./build-fuzz/fuzz_parsers -max_total_time=60 tests/fuzz/parsers
 *
 * The file-based readers get the input through a file in $TMPDIR (or
 * /tmp) named after the process, rewritten for every input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regain/augment.h"
#include "regain/checkpoint.h"
#include "regain/curriculum.h"
#include "regain/data.h"
#include "regain/graph.h"
#include "regain/label_noise.h"
#include "regain/recipe.h"
#include "regain/safetensors.h"
#include "regain/spec.h"
#include "regain/store.h"
#include "regain/trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { P_RECIPE, P_SPEC, P_TRAIN_CONFIG, P_AUGMENT, P_SAFETENSORS, P_CHECKPOINT, P_IDX_IMAGES, P_IDX_LABELS,
       P_SCORES, P_RESULTS, P_NOISE_MAP, P_COUNT };

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_parsers: round trip failed: %s\n", what);
        abort();
    }
}

/* $TMPDIR/regain-fuzz-PID.SUFFIX (or under /tmp), made once into buf */
static const char *temp_path(char *buf, size_t size, const char *suffix)
{
    if (!buf[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(buf, size, "%s/regain-fuzz-%ld.%s", dir && dir[0] ? dir : "/tmp", (long)getpid(), suffix);
    }
    return buf;
}

/* The input as a file for the path-based readers; NULL if it cannot be
 * written (then the input is skipped). */
static const char *as_file(const uint8_t *data, size_t size)
{
    static char buf[512];
    const char *path = temp_path(buf, sizeof buf, "bin");
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    return ok ? path : NULL;
}

static void fuzz_recipe(const char *text)
{
    rg_recipe *r;
    rg_error err = {0};
    if (rg_recipe_parse(text, "fuzz.ini", &r, &err)) return;
    static const char *profiles[] = {NULL, "quick"};
    for (int p = 0; p < 2; p++) {
        rg_resolved_recipe *x;
        if (rg_recipe_resolve(r, profiles[p], &x, &err)) continue;
        for (int32_t i = 0; i < x->n_runs; i++) free(rg_resolved_config_text(&x->runs[i], 1));
        rg_resolved_free(x);
    }
    rg_recipe_free(r);
}

static void fuzz_spec(const char *text)
{
    rg_graph *g;
    rg_error err = {0};
    if (rg_spec_build(text, "fuzz.spec", &g, &err) == RG_OK) rg_graph_free(g);
}

static void fuzz_train_config(const char *text)
{
    rg_train_config c, again;
    rg_error err = {0};
    rg_train_config_default(&c);
    if (rg_train_config_parse(&c, text, "fuzz.cfg", &err)) return;
    char *first = rg_train_config_format(&c);
    if (!first) return;
    rg_train_config_default(&again);
    check(rg_train_config_parse(&again, first, "formatted", &err) == RG_OK, "trainer configuration: reparse");
    char *second = rg_train_config_format(&again);
    check(second && strcmp(first, second) == 0, "trainer configuration: format, parse, format");
    free(first);
    free(second);
}

static void fuzz_augment(const char *text)
{
    rg_augment_config c, again;
    rg_error err = {0};
    memset(&c, 0, sizeof c);
    if (rg_augment_parse(text, &c, &err)) return;
    char first[4096], second[4096];
    size_t n = rg_augment_format(&c, first, sizeof first);
    check(n < sizeof first, "augmentation: the canonical spec fits");
    memset(&again, 0, sizeof again);
    check(rg_augment_parse(first, &again, &err) == RG_OK, "augmentation: reparse");
    rg_augment_format(&again, second, sizeof second);
    check(strcmp(first, second) == 0, "augmentation: format, parse, format");
}

static void fuzz_file(int parser, const uint8_t *data, size_t size)
{
    const char *path = as_file(data, size);
    if (!path) return;
    rg_error err = {0};
    switch (parser) {
    case P_SAFETENSORS: {
        rg_st_file *f;
        if (rg_st_read(path, &f, &err) == RG_OK) {
            for (int32_t i = 0; i < rg_st_count(f); i++) check(rg_st_at(f, i) != NULL, "safetensors: every tensor");
            rg_st_free(f);
        }
        break;
    }
    case P_CHECKPOINT: {
        rg_graph *g;
        rg_st_file *f;
        if (rg_checkpoint_load(path, 1, &g, &f, &err) == RG_OK) {
            rg_graph_free(g);
            rg_st_free(f);
        }
        break;
    }
    case P_IDX_IMAGES: {
        uint8_t *pixels;
        int32_t n, h, w;
        if (rg_idx_read_images(path, &pixels, &n, &h, &w, &err) == RG_OK) free(pixels);
        break;
    }
    case P_IDX_LABELS: {
        uint8_t *labels;
        int32_t n;
        if (rg_idx_read_labels(path, &labels, &n, &err) == RG_OK) free(labels);
        break;
    }
    case P_SCORES: {
        float scores[64];
        rg_curriculum_read_scores(path, 64, scores, &err);
        break;
    }
    case P_RESULTS: {
        /* a new store each time: the import's result must not depend on
         * earlier inputs */
        static char db_buf[512];
        const char *db = temp_path(db_buf, sizeof db_buf, "db");
        char side[600];
        remove(db);
        snprintf(side, sizeof side, "%s-wal", db);
        remove(side);
        snprintf(side, sizeof side, "%s-shm", db);
        remove(side);
        rg_store *s;
        if (rg_store_open(db, 0, &s, &err) == RG_OK) {
            rg_store_import_counts counts;
            rg_store_import(s, path, NULL, &counts, &err);
            rg_store_close(s);
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int parser = data[0] % P_COUNT;
    data++;
    size--;
    if (parser >= P_SAFETENSORS && parser <= P_RESULTS) {
        fuzz_file(parser, data, size);
        return 0;
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    rg_error err = {0};
    int32_t map[10];
    switch (parser) {
    case P_RECIPE: fuzz_recipe(text); break;
    case P_SPEC: fuzz_spec(text); break;
    case P_TRAIN_CONFIG: fuzz_train_config(text); break;
    case P_AUGMENT: fuzz_augment(text); break;
    case P_NOISE_MAP: rg_label_noise_parse_map(text, 10, map, &err); break;
    }
    free(text);
    return 0;
}
