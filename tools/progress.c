/* Progress display: a redrawn bar with rate and ETA on a terminal; on a pipe
 * or file, a plain line at each quarter of an epoch. */
#include "cli.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

void cli_format_duration(double s, char *buf, size_t size)
{
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else if (t >= 60) snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, size, "%lds", t);
}

void cli_progress_init(cli_progress *p)
{
    p->tty = isatty(fileno(stderr));
    p->last_draw = 0.0;
    p->last_quarter = -1;
}

void cli_progress_update(cli_progress *p, const rg_train_progress *pr)
{
    char eta[32], el[32];
    cli_format_duration(pr->eta_s, eta, sizeof eta);
    cli_format_duration(pr->elapsed_s, el, sizeof el);
    if (p->tty) {
        double t = cli_now_s();
        if (t - p->last_draw < 0.1 && pr->batch != pr->batches) return;
        p->last_draw = t;
        enum { WIDTH = 24 };
        int fill = (int)((double)pr->batch / pr->batches * WIDTH);
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d  loss %.4f  %.0f img/s  elapsed %s  ETA %s", pr->epoch + 1,
                pr->epochs, bar, pr->batch, pr->batches, pr->loss, pr->images_per_s, el, eta);
        fflush(stderr);
        return;
    }
    int32_t quarter = (int32_t)((int64_t)pr->batch * 4 / pr->batches);
    if (quarter == p->last_quarter || quarter == 0 || pr->batch == pr->batches) return;
    p->last_quarter = quarter;
    fprintf(stderr, "epoch %d/%d  %d/%d batches  loss %.4f  %.0f img/s  elapsed %s  ETA %s\n", pr->epoch + 1,
            pr->epochs, pr->batch, pr->batches, pr->loss, pr->images_per_s, el, eta);
}

void cli_progress_clear(cli_progress *p)
{
    if (p->tty) fprintf(stderr, "\r\033[K");
    p->last_quarter = -1;
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
