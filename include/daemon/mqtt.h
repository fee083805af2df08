/*
 * mqtt: the broker connection, driven by the daemon's own poll loop.
 *
 * libmosquitto runs in "threaded" mode without its thread, so queued packets
 * — above all the PUBACKs it queues before calling on_message — leave only
 * when mqtt_flush() is called. The daemon calls it after its transaction
 * commits; mqtt_abort() drops the connection instead, so acks for rows that
 * did not commit are discarded and the broker redelivers the messages.
 */
#ifndef GRIDPATROL_MQTT_H
#define GRIDPATROL_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

struct mqtt;

struct mqtt_handlers {
	/* One incoming PUBLISH; its ack is queued, not sent. */
	void (*message)(void *arg, const char *topic, const void *payload, size_t len);
	void (*connected)(void *arg); /* CONNACK accepted, subscribed */
	void (*disconnected)(void *arg);
	/* A connect attempt failed (not called for the loss of a connection
	 * that was up: that is `disconnected`). */
	void (*unreachable)(void *arg);
	void (*published)(void *arg, int mid); /* PUBACK for our QoS 1 publish */
	/* The broker's $SYS/broker/publish/messages/dropped counter (payload
	 * as sent: decimal text). Never passed to `message`. */
	void (*dropped)(void *arg, const void *payload, size_t len);
};

#define MQTT_SYS_DROPPED "$SYS/broker/publish/messages/dropped"

/* Builds the client from cfg->mqtt (credentials, TLS, protocol, will).
 * Returns NULL with a message in err. cfg must outlive the client. */
struct mqtt *mqtt_new(const struct config *cfg, struct loop *l, const struct mqtt_handlers *h,
                      void *arg, char *err, size_t errlen);
void mqtt_free(struct mqtt *m);

void mqtt_start(struct mqtt *m);
/* Send what is queued (acks, pings, publishes). Call only when every row
 * whose ack may be queued has committed. */
void mqtt_flush(struct mqtt *m);
/* Drop the connection without sending anything queued; reconnect after
 * delay_ms (or when released from hold). */
void mqtt_abort(struct mqtt *m, int64_t delay_ms);
/* While held the client neither reads nor reconnects. */
void mqtt_hold(struct mqtt *m, bool hold);
/* Clean DISCONNECT, flushing queued packets for at most timeout_ms. */
void mqtt_shutdown(struct mqtt *m, int timeout_ms);
bool mqtt_connected(const struct mqtt *m);
/* Queue a publish (sent at the next flush). *mid (may be NULL) receives
 * the message id that `published` reports. Returns 0 or -1. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, int *mid);
/* "gridpatrol/status/<client_id>" */
const char *mqtt_status_topic(const struct mqtt *m);

#endif
