/* The recipes shipped in recipes/ all plan: `regain run RECIPE --dry-run`,
 * with no profile and with each profile the recipe declares, exits 0 and
 * prints the plan. A recipe edit that breaks a key, a reference, a profile
 * or a comparison fails here, not hours into a figure run. Nothing trains. */
#include "test_support.h"
#include "regain/recipe.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 16];

static void test_shipped_recipes_plan(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    const char *dir = rgt_env("REGAIN_RECIPES");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int recipes = 0, plans = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".ini")) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rg_recipe *r = NULL;
        rg_error err = {0};
        if (rg_recipe_load(path, &r, &err)) fail_msg("%s", err.msg);
        /* the store in the test's directory: the real one is never touched */
        rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "runs to do; estimated", NULL,
                       "run '%s' --dry-run --store plan.db", path);
        plans++;
        for (int32_t k = 0; k < r->n_profiles; k++, plans++)
            rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "runs to do; estimated", NULL,
                           "run '%s' --profile %s --dry-run --store plan.db", path, r->profiles[k].name);
        rg_recipe_free(r);
        recipes++;
    }
    closedir(d);
    /* fashion-mnist, augmentation, curriculum, distillation, quantization */
    assert_true(recipes >= 5);
    assert_true(plans >= 2 * recipes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_recipes_plan),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
