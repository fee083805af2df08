/*
 * mqtt: libmosquitto in external-loop mode.
 *
 * Why not mosquitto_loop_start(): its thread writes PUBACKs as soon as they
 * are queued, i.e. before our COMMIT, and it has known hangs in 2.0.x. Here
 * the socket is polled by the daemon loop; reads happen in the fd callback,
 * writes only in mqtt_flush(). Reconnection is ours too: exponential backoff
 * with jitter, forever, logging each state change once.
 */
#include "mqtt.h"
#include "netbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

#define MQTT_BACKOFF_MIN_MS 500
#define MQTT_BACKOFF_MAX_MS 60000
/* Messages read per wake-up before we commit and ack: bounds both the
 * transaction size and the latency of the first message in it. */
#define MQTT_READ_BUDGET 2000

struct mqtt {
	const struct config *cfg;
	struct loop *loop;
	struct mosquitto *mosq;
	struct mqtt_handlers h;
	void *arg;
	int fd_handle;
	struct loop_timer reconnect_timer, misc_timer, drain_timer;
	int backoff_tries; /* failed attempts since the last CONNACK */
	bool started, connected, connecting, held, stopping, ever_connected;
	bool aborting;       /* inside mqtt_abort: messages still read are dropped */
	bool read_this_pass; /* the fd callback ran since the last prepare */
	bool warned_down;    /* "connection lost" logged for the current outage */
	char status_topic[512];
	char *password;
};

static int mqtt_read_secret(const char *path, char **out, char *err, size_t errlen)
{
	char buf[4097];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open password file %s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read password file %s: %s", path, strerror(e));
		return -1;
	}
	buf[n] = '\0';
	/* Editors and `echo` add a newline that is never part of a password. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void mqtt_schedule_reconnect(struct mqtt *m, int64_t delay_ms)
{
	if (m->stopping)
		return;
	loop_timer_arm(m->loop, &m->reconnect_timer, delay_ms);
}

static int64_t mqtt_next_backoff(struct mqtt *m)
{
	int64_t d = backoff_delay_ms(MQTT_BACKOFF_MIN_MS, MQTT_BACKOFF_MAX_MS, m->backoff_tries);
	if (m->backoff_tries < INT_MAX)
		m->backoff_tries++;
	/* ±25 % jitter so a village of gateways restarted by one power cut
	 * does not reconnect in lockstep. */
	return backoff_jitter_ms(d, 25, (uint64_t)random());
}

static void mqtt_down(struct mqtt *m, const char *why)
{
	bool was = m->connected;
	m->connected = false;
	m->connecting = false;
	if (!m->warned_down && !m->stopping) {
		log_warnx("mqtt: %s %s:%d: %s; retrying with backoff",
		          was ? "lost connection to" : "cannot connect to", m->cfg->mqtt.host,
		          m->cfg->mqtt.port, why);
		m->warned_down = true;
	} else {
		log_debug("mqtt: still down: %s", why);
	}
	if (was && m->h.disconnected)
		m->h.disconnected(m->arg);
	else if (!was && !m->stopping && m->h.unreachable)
		m->h.unreachable(m->arg);
	mqtt_schedule_reconnect(m, mqtt_next_backoff(m));
}

static void mqtt_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt *m = obj;
	(void)mosq;
	m->connecting = false;
	if (rc != 0) {
		/* The broker closes the socket after a refusal; the read error
		 * that follows lands in on_disconnect, which schedules a retry. */
		log_errx("mqtt: broker refused connection: %s", mosquitto_connack_string(rc));
		return;
	}
	int mid;
	rc = mosquitto_subscribe(m->mosq, &mid, m->cfg->mqtt.tmpl.subscription, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_errx("mqtt: subscribe %s: %s", m->cfg->mqtt.tmpl.subscription,
		         mosquitto_strerror(rc));
		return;
	}
	/* Not matched by `#` (MQTT-4.7.2-1): the one way a client learns that
	 * mosquitto discarded messages over max_queued_messages/bytes. QoS 0:
	 * the value is retained and refreshed every sys_interval. A refusal
	 * (ACL) shows up as no value; the daemon says so. */
	if (m->h.dropped) {
		rc = mosquitto_subscribe(m->mosq, &mid, MQTT_SYS_DROPPED, 0);
		if (rc != MOSQ_ERR_SUCCESS)
			log_warnx("mqtt: subscribe %s: %s", MQTT_SYS_DROPPED,
			          mosquitto_strerror(rc));
	}
	m->connected = true;
	m->ever_connected = true;
	m->backoff_tries = 0;
	if (m->warned_down)
		log_notice("mqtt: reconnected to %s:%d", m->cfg->mqtt.host, m->cfg->mqtt.port);
	else
		log_info("mqtt: connected to %s:%d, subscribed to %s", m->cfg->mqtt.host,
		         m->cfg->mqtt.port, m->cfg->mqtt.tmpl.subscription);
	m->warned_down = false;
	if (m->h.connected)
		m->h.connected(m->arg);
}

static void mqtt_on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt *m = obj;
	(void)mosq;
	if (m->stopping)
		return;
	mqtt_down(m, rc == 0                ? "disconnected"
	             : rc == MOSQ_ERR_ERRNO ? strerror(errno)
	                                    : mosquitto_strerror(rc));
}

static void mqtt_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct mqtt *m = obj;
	(void)mosq;
	/* Read while tearing the connection down: never acked, so the broker
	 * sends it again after we reconnect. */
	if (m->aborting)
		return;
	/* $SYS is the broker talking, not a device: never a bad_topic. */
	if (msg->topic && strncmp(msg->topic, "$SYS/", 5) == 0) {
		if (m->h.dropped && strcmp(msg->topic, MQTT_SYS_DROPPED) == 0)
			m->h.dropped(m->arg, msg->payload,
			             (size_t)(msg->payloadlen > 0 ? msg->payloadlen : 0));
		return;
	}
	m->h.message(m->arg, msg->topic, msg->payload,
	             (size_t)(msg->payloadlen > 0 ? msg->payloadlen : 0));
}

static void mqtt_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct mqtt *m = obj;
	(void)mosq;
	if (m->h.published)
		m->h.published(m->arg, mid);
}

static bool mqtt_readable_now(int fd)
{
	if (netbuf_readable() > 0)
		return true;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static void mqtt_send_failed(struct mqtt *m);

static void mqtt_fd_cb(void *arg, int fd, short revents)
{
	struct mqtt *m = arg;

	if (m->held)
		return;
	m->read_this_pass = true;
	if ((revents & POLLOUT) && netbuf_release() < 0) {
		/* acks that did not fit the socket last time, now lost */
		mqtt_send_failed(m);
		return;
	}
	if (!(revents & (POLLIN | POLLERR | POLLHUP))) {
		/* POLLOUT only: drives a TLS handshake (done inside loop_read);
		 * on a plain socket it reads nothing. Writes wait for flush. */
		mosquitto_loop_read(m->mosq, 1);
		return;
	}
	/* Drain what is buffered, bounded, so one wake-up is one batch.
	 * loop_read returns success both after a whole packet and when the
	 * socket ran dry. errno cannot tell them apart (libmosquitto leaves
	 * EAGAIN from its socketpair wake-up write after most packets, which
	 * once ended every burst after one message whenever nothing in the
	 * message callback happened to clear errno); netbuf sees the read
	 * itself. Saves a poll() per message; the poll every 64 packets is a
	 * safety net should a libmosquitto read some other way. */
	(void)netbuf_take_dry(); /* a stale flag from before this burst */
	for (int i = 0; i < MQTT_READ_BUDGET; i++) {
		int rc = mosquitto_loop_read(m->mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(m->mosq) != fd)
			return;
		if (netbuf_take_dry())
			return;
		if (i % 64 == 63 && !mqtt_readable_now(fd))
			return;
	}
}

static void mqtt_prepare(void *arg)
{
	struct mqtt *m = arg;
	int fd = mosquitto_socket(m->mosq);
	short ev = 0;

	if (fd >= 0 && fd != netbuf_fd())
		netbuf_attach(fd); /* a new connection; the old fd was closed */
	m->read_this_pass = false;
	if (fd >= 0 && !m->held) {
		ev = POLLIN;
		if (mosquitto_want_write(m->mosq) || netbuf_unsent() > 0)
			ev |= POLLOUT;
		/* Packets already read ahead do not make the socket poll
		 * readable: come straight back for them (the read budget
		 * ended the last burst). */
		if (netbuf_readable() > 0)
			loop_timer_arm(m->loop, &m->drain_timer, 0);
	}
	loop_fd_set(m->loop, m->fd_handle, fd, ev);
}

static void mqtt_connect_now(struct mqtt *m)
{
	int rc;

	if (m->held || m->stopping || m->connected || m->connecting)
		return;
	m->connecting = true;
	if (!m->started) {
		m->started = true;
		if (m->cfg->mqtt.protocol == 5) {
			/* Only the v5 call carries CONNECT properties, and it
			 * connects synchronously; libmosquitto keeps the
			 * properties for every later reconnect_async. */
			mosquitto_property *props = NULL;
			uint32_t exp = m->cfg->mqtt.session_expiry_s > 0xFFFFFFFFLL
			                       ? 0xFFFFFFFFu
			                       : (uint32_t)m->cfg->mqtt.session_expiry_s;
			rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
			                                  exp);
			if (rc == MOSQ_ERR_SUCCESS)
				rc = mosquitto_connect_bind_v5(
				        m->mosq, m->cfg->mqtt.host, m->cfg->mqtt.port,
				        m->cfg->mqtt.keepalive_s, NULL, props);
			mosquitto_property_free_all(&props);
		} else {
			rc = mosquitto_connect_async(m->mosq, m->cfg->mqtt.host, m->cfg->mqtt.port,
			                             m->cfg->mqtt.keepalive_s);
		}
	} else {
		rc = mosquitto_reconnect_async(m->mosq);
	}
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
		m->connecting = false;
		bool was = m->connected;
		m->connected = false;
		(void)was;
		mqtt_down(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	}
}

static void mqtt_drain_cb(void *arg)
{
	struct mqtt *m = arg;
	int fd = mosquitto_socket(m->mosq);
	/* Not twice in one pass: one pass is one batch of at most the budget. */
	if (fd >= 0 && fd == netbuf_fd() && !m->read_this_pass)
		mqtt_fd_cb(m, fd, POLLIN);
}

static void mqtt_reconnect_cb(void *arg)
{
	mqtt_connect_now(arg);
}

static void mqtt_misc_cb(void *arg)
{
	struct mqtt *m = arg;
	/* Keepalive: may queue a PINGREQ (sent at the next flush) or notice a
	 * dead broker and close the socket (on_disconnect follows). */
	if (mosquitto_socket(m->mosq) >= 0)
		mosquitto_loop_misc(m->mosq);
	loop_timer_arm(m->loop, &m->misc_timer, 1000);
}

struct mqtt *mqtt_new(const struct config *cfg, struct loop *l, const struct mqtt_handlers *h,
                      void *arg, char *err, size_t errlen)
{
	struct mqtt *m = calloc(1, sizeof(*m));
	int rc;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->cfg = cfg;
	m->loop = l;
	m->h = *h;
	m->arg = arg;
	m->backoff_tries = 0;
	loop_timer_init(&m->reconnect_timer, mqtt_reconnect_cb, m);
	loop_timer_init(&m->misc_timer, mqtt_misc_cb, m);
	loop_timer_init(&m->drain_timer, mqtt_drain_cb, m);
	snprintf(m->status_topic, sizeof(m->status_topic), "gridpatrol/status/%s",
	         cfg->mqtt.client_id);

	/* clean_session=false with a fixed id: the broker keeps our
	 * subscription and queues QoS 1 messages while we are away. */
	m->mosq = mosquitto_new(cfg->mqtt.client_id, false, m);
	if (!m->mosq) {
		snprintf(err, errlen, "mosquitto_new: %s", strerror(errno));
		goto fail;
	}
	mosquitto_threaded_set(m->mosq, true);
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
	                     cfg->mqtt.protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(m->mosq, mqtt_on_connect);
	mosquitto_disconnect_callback_set(m->mosq, mqtt_on_disconnect);
	mosquitto_message_callback_set(m->mosq, mqtt_on_message);
	mosquitto_publish_callback_set(m->mosq, mqtt_on_publish);

	if (cfg->mqtt.password_file || cfg->mqtt.password_credential) {
		char path[4096];
		const char *p = cfg->mqtt.password_file;
		if (cfg->mqtt.password_credential) {
			const char *dir = getenv("CREDENTIALS_DIRECTORY");
			if (!dir) {
				snprintf(err, errlen,
				         "password_credential %s: $CREDENTIALS_DIRECTORY "
				         "is not set (use LoadCredential= in the unit)",
				         cfg->mqtt.password_credential);
				goto fail;
			}
			snprintf(path, sizeof(path), "%s/%s", dir, cfg->mqtt.password_credential);
			p = path;
		}
		if (mqtt_read_secret(p, &m->password, err, errlen) < 0)
			goto fail;
	}
	if (cfg->mqtt.username || m->password) {
		rc = mosquitto_username_pw_set(m->mosq, cfg->mqtt.username, m->password);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, errlen, "username/password: %s", mosquitto_strerror(rc));
			goto fail;
		}
	}
	if (cfg->mqtt.tls) {
		rc = mosquitto_tls_set(m->mosq, cfg->mqtt.ca_file, cfg->mqtt.ca_path,
		                       cfg->mqtt.cert_file, cfg->mqtt.key_file, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, errlen, "tls: %s",
			         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			goto fail;
		}
		if (cfg->mqtt.tls_insecure)
			mosquitto_tls_insecure_set(m->mosq, true);
	}
	static const char offline[] = "{\"state\":\"offline\"}";
	rc = mosquitto_will_set(m->mosq, m->status_topic, (int)strlen(offline), offline, 1, true);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "will: %s", mosquitto_strerror(rc));
		goto fail;
	}

	m->fd_handle = loop_fd_add(l, -1, 0, mqtt_fd_cb, m);
	if (m->fd_handle < 0 || loop_on_prepare(l, mqtt_prepare, m) < 0) {
		snprintf(err, errlen, "loop: %s", strerror(errno));
		goto fail;
	}
	return m;
fail:
	mqtt_free(m);
	return NULL;
}

void mqtt_free(struct mqtt *m)
{
	if (!m)
		return;
	if (m->loop) {
		loop_timer_disarm(m->loop, &m->reconnect_timer);
		loop_timer_disarm(m->loop, &m->misc_timer);
		loop_timer_disarm(m->loop, &m->drain_timer);
	}
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	if (m->password) {
		explicit_bzero(m->password, strlen(m->password));
		free(m->password);
	}
	free(m);
}

void mqtt_start(struct mqtt *m)
{
	loop_timer_arm(m->loop, &m->misc_timer, 1000);
	mqtt_connect_now(m);
}

void mqtt_flush(struct mqtt *m)
{
	if (m->held || mosquitto_socket(m->mosq) < 0)
		return;
	/* All of this pass's acks leave in one send() (see netbuf.h). */
	if (mosquitto_want_write(m->mosq)) {
		netbuf_hold();
		mosquitto_loop_write(m->mosq, 1);
	}
	if (netbuf_release() < 0)
		mqtt_send_failed(m);
}

/* libmosquitto believes the gathered acks were written. On a broken
 * connection the read side fails too; but an error that leaves the socket
 * up (ENOBUFS) would leave those messages in the broker's in-flight window
 * for good. A new session makes the broker send them again; dedup keeps
 * one row each. */
static void mqtt_send_failed(struct mqtt *m)
{
	log_warnx("mqtt: sending acks to the broker failed: %s; reconnecting", strerror(errno));
	mqtt_abort(m, 0);
}

void mqtt_abort(struct mqtt *m, int64_t delay_ms)
{
	int fd = mosquitto_socket(m->mosq);
	if (fd >= 0) {
		/* shutdown() makes the next read fail, so libmosquitto closes
		 * the socket through its own error path; the queued acks are
		 * freed on reconnect without ever being written. */
		shutdown(fd, SHUT_RDWR);
		bool was = m->connected;
		m->stopping = true; /* keep on_disconnect from scheduling */
		/* Linux still hands out what had arrived before the shutdown
		 * (and the read-ahead holds more): read to the end, dropping
		 * those messages, until libmosquitto sees EOF and closes. */
		m->aborting = true;
		for (int i = 0; i < 100000 && mosquitto_socket(m->mosq) == fd; i++)
			if (mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS)
				break;
		m->aborting = false;
		m->stopping = false;
		m->connected = false;
		m->connecting = false;
		if (was && m->h.disconnected)
			m->h.disconnected(m->arg);
	}
	mqtt_schedule_reconnect(m, delay_ms);
}

void mqtt_hold(struct mqtt *m, bool hold)
{
	if (m->held == hold)
		return;
	m->held = hold;
	if (!hold && m->started)
		mqtt_schedule_reconnect(m, 0);
}

bool mqtt_connected(const struct mqtt *m)
{
	return m->connected;
}

const char *mqtt_status_topic(const struct mqtt *m)
{
	return m->status_topic;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, int *mid)
{
	int rc = mosquitto_publish(m->mosq, mid, topic, (int)len, payload, qos, retain);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

void mqtt_shutdown(struct mqtt *m, int timeout_ms)
{
	m->stopping = true;
	loop_timer_disarm(m->loop, &m->reconnect_timer);
	if (!m->connected || m->held)
		return;
	mosquitto_disconnect(m->mosq);
	int64_t end = loop_mono_ms() + timeout_ms;
	while (mosquitto_socket(m->mosq) >= 0 &&
	       (mosquitto_want_write(m->mosq) || netbuf_unsent() > 0)) {
		int64_t left = end - loop_mono_ms();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = mosquitto_socket(m->mosq), .events = POLLOUT };
		if (poll(&p, 1, (int)left) <= 0)
			break;
		/* Earlier acks first, and unheld: libmosquitto closes the
		 * socket right after writing DISCONNECT. */
		if (netbuf_unsent() > 0) {
			if (netbuf_release() < 0)
				break;
			continue;
		}
		if (mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS)
			break;
	}
	m->connected = false;
}
