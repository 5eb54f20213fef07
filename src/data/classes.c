/* Class names for tables and reports (see data.h). */
#include "regain/data.h"

#include <stdio.h>

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *rg_class_name(int32_t classes, int32_t c, char *buf, size_t size)
{
    if (classes == 10 && c >= 0 && c < 10) return fashion_names[c];
    snprintf(buf, size, "class %d", c);
    return buf;
}
