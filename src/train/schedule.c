/* Learning-rate schedules, a pure function of the step (so a resumed run
 * continues on exactly the same curve). */
#include "regain/train.h"

#include <math.h>

float rg_schedule_lr(const rg_schedule *s, int64_t step)
{
    if (step < s->warmup_steps && s->warmup_steps > 0) {
        double f = s->warmup_start + (1.0 - s->warmup_start) * (double)step / (double)s->warmup_steps;
        return (float)(s->base_lr * f);
    }
    switch (s->kind) {
    case RG_SCHED_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        double t = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
        if (t > 1.0) t = 1.0;
        return (float)(s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * t)));
    }
    case RG_SCHED_STEP: {
        int64_t k = s->step_every > 0 ? (step - s->warmup_steps) / s->step_every : 0;
        return (float)(s->base_lr * pow(s->gamma, (double)k));
    }
    case RG_SCHED_CONSTANT:
        break;
    }
    return s->base_lr;
}
