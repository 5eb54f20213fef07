/* The table of run kinds (see kinds.h). */
#include "exp/kinds.h"

#include <string.h>

/* teacher..teacher3: distillation (distill.h); curriculum_teacher: a
 * checkpoint scoring the training set (curriculum.h) */
static const char *const train_artifact_keys[] = {"init", "teacher", "teacher2", "teacher3", "curriculum_teacher", NULL};
static const char *const train_file_keys[] = {"curriculum_scores", NULL};

static const char *const quantize_artifact_keys[] = {"init", NULL};

static const rg_exp_kind kinds[] = {
    {"train", train_artifact_keys, rg_exp_run_train, train_file_keys},
    {"quantize", quantize_artifact_keys, rg_exp_run_quantize, NULL},
};

const rg_exp_kind *rg_exp_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, name)) return &kinds[i];
    return NULL;
}

const char *rg_exp_kind_list(void) { return "train, quantize"; }
