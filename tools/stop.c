/* Stopping on request: the first SIGINT or SIGTERM asks the training to
 * stop after its current step (its state saved, to resume); a second one
 * stops the command at once. */
#include "cli.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static pid_t main_pid;

static void on_signal(int sig)
{
    static const char msg[] = "\nregain: stopping after the current step (its state is saved); "
                              "Ctrl-C again stops at once\n";
    if (getpid() != main_pid) { /* a run's child process: its parent decides */
        asked = 1;
        return;
    }
    if (asked) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    asked = 1;
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

void cli_stop_on_signals(void)
{
    main_pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_stop_asked(void *unused)
{
    (void)unused;
    return asked;
}
