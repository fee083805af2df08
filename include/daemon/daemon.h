/*
 * daemon: gridpatrold's wiring — configuration, store, broker connection and
 * the loop hooks that turn each poll wake-up into one committed batch whose
 * acks leave only after COMMIT.
 */
#ifndef GRIDPATROL_DAEMON_H
#define GRIDPATROL_DAEMON_H

#include "config.h"

/* Runs until SIGTERM/SIGINT. Takes ownership of cfg. Returns the process
 * exit status (0 after a clean stop). */
int daemon_run(const char *config_path, struct config *cfg);

#endif
