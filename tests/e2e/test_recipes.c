/* The recipes shipped in recipes/ all plan: `regain run RECIPE --dry-run`,
 * with no profile and with each profile the recipe declares, exits 0 and
 * prints the plan. A recipe edit that breaks a key, a reference, a profile
 * or a comparison fails here, not hours into a figure run. Nothing trains. */
#include "test_support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[1 << 16];

/* The names of the [profile NAME] sections of a recipe text, space-separated. */
static void profiles_of(const char *text, char *names, size_t size)
{
    names[0] = 0;
    for (const char *p = strstr(text, "\n[profile "); p; p = strstr(p + 1, "\n[profile ")) {
        const char *a = p + 10, *b = strchr(a, ']');
        if (!b) break;
        size_t len = strlen(names);
        snprintf(names + len, size - len, "%.*s ", (int)(b - a), a);
    }
}

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
        char path[1200], names[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size;
        char *text = rgt_read_file(path, &size);
        profiles_of(text, names, sizeof names);
        free(text);
        /* the store in the test's directory: the real one is never touched */
        rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "runs to do; estimated", NULL,
                       "run '%s' --dry-run --store plan.db", path);
        plans++;
        for (char *name = strtok(names, " "); name; name = strtok(NULL, " ")) {
            rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "runs to do; estimated", NULL,
                           "run '%s' --profile %s --dry-run --store plan.db", path, name);
            plans++;
        }
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
