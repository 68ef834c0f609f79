/*
 * kafka_mock_cluster — librdkafka's mock Kafka cluster (rdkafka_mock.h) as a process, so
 * tests and users need no JVM.
 *
 *   kafka_mock_cluster [--brokers N] [--topic NAME[:PARTITIONS]]... [-- CMD ARGS...]
 *
 * Starts a cluster of N brokers (default 1) on 127.0.0.1, creates the given topics
 * (default 4 partitions), prints the bootstrap address ("127.0.0.1:P1,...") as one line
 * on stdout, then:
 *   - with "-- CMD ARGS...": runs CMD with @BOOTSTRAP@ in its arguments replaced by the
 *     address and KAFKA_BOOTSTRAP in its environment, waits for it, stops the cluster and
 *     exits with CMD's status (this is how meson runs the plugin battery);
 *   - else: serves until SIGINT/SIGTERM or end of stdin, reading one command per line:
 *       down [ID]     broker ID (default: every broker) refuses and drops connections
 *       up [ID]       accepts connections again
 *       topic NAME [PARTITIONS]   create a topic
 *       rtt ID MS     add MS of round-trip time to broker ID
 *     and answering each with "ok" or "error: ..." on stdout.
 *
 * The mock keeps a bounded log per partition and is marked experimental by librdkafka;
 * it is for tests and demos only.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop_flag;
static volatile pid_t child_pid;

static void on_signal(int sig)
{
	stop_flag = 1;
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kafka_mock_cluster [--brokers N] [--topic NAME[:PARTITIONS]]... [-- CMD ARGS...]\n");
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *spec, int brokers)
{
	char name[512];
	snprintf(name, sizeof name, "%s", spec);
	int parts = 4;
	char *colon = strrchr(name, ':');
	if (colon) {
		*colon = 0;
		parts = atoi(colon + 1);
	}
	if (!name[0] || parts < 1)
		return -1;
	rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, brokers < 3 ? brokers : 3);
	if (err) {
		fprintf(stderr, "kafka_mock_cluster: topic %s: %s\n", name, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* One stdin command; returns 0 or -1 with a message on stdout. */
static void command(rd_kafka_mock_cluster_t *mc, char *line, int brokers)
{
	char *argv[4] = {0};
	int argc = 0;
	for (char *tok = strtok(line, " \t\r\n"); tok && argc < 4; tok = strtok(NULL, " \t\r\n"))
		argv[argc++] = tok;
	if (argc == 0)
		return;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) {
		int32_t id = argc > 1 ? atoi(argv[1]) : -1;
		if (id == -1) {
			for (int32_t b = 1; b <= brokers && !err; b++)
				err = argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, b)
							: rd_kafka_mock_broker_set_up(mc, b);
		} else {
			err = argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
						: rd_kafka_mock_broker_set_up(mc, id);
		}
	} else if (!strcmp(argv[0], "topic") && argc >= 2) {
		char spec[600];
		snprintf(spec, sizeof spec, "%s:%s", argv[1], argc > 2 ? argv[2] : "4");
		if (create_topic(mc, spec, brokers)) {
			printf("error: cannot create topic %s\n", argv[1]);
			fflush(stdout);
			return;
		}
	} else if (!strcmp(argv[0], "rtt") && argc == 3) {
		err = rd_kafka_mock_broker_set_rtt(mc, atoi(argv[1]), atoi(argv[2]));
	} else {
		printf("error: unknown command %s\n", argv[0]);
		fflush(stdout);
		return;
	}
	if (err)
		printf("error: %s\n", rd_kafka_err2str(err));
	else
		printf("ok\n");
	fflush(stdout);
}

static char *replace_all(const char *s, const char *pat, const char *with)
{
	size_t pl = strlen(pat), wl = strlen(with), n = 0;
	for (const char *p = strstr(s, pat); p; p = strstr(p + pl, pat))
		n++;
	char *out = malloc(strlen(s) + n * wl + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p; (p = strstr(s, pat)); s = p + pl) {
		memcpy(o, s, (size_t)(p - s));
		o += p - s;
		memcpy(o, with, wl);
		o += wl;
	}
	strcpy(o, s);
	return out;
}

static int run_child(char **cmd, const char *bootstrap)
{
	int n = 0;
	while (cmd[n])
		n++;
	char **argv = calloc((size_t)n + 1, sizeof *argv);
	if (!argv)
		return 127;
	for (int i = 0; i < n; i++)
		argv[i] = replace_all(cmd[i], "@BOOTSTRAP@", bootstrap);
	setenv("KAFKA_BOOTSTRAP", bootstrap, 1);
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "kafka_mock_cluster: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status = 0, rc = 127;
	if (pid > 0) {
		child_pid = pid;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		child_pid = 0;
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	for (int i = 0; i < n; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

int main(int argc, char **argv)
{
	int brokers = 1;
	char **cmd = NULL;
	const char *topics[64];
	int n_topics = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
			brokers = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--topic") && i + 1 < argc && n_topics < 64) {
			topics[n_topics++] = argv[++i];
		} else if (!strcmp(argv[i], "--")) {
			cmd = &argv[i + 1];
			break;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (brokers < 1 || brokers > 16 || (cmd && !cmd[0])) {
		usage(stderr);
		return 2;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!rk) {
		fprintf(stderr, "kafka_mock_cluster: %s\n", errstr);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc) {
		fprintf(stderr, "kafka_mock_cluster: cannot create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	int rc = 0;
	for (int i = 0; i < n_topics; i++)
		if (create_topic(mc, topics[i], brokers))
			rc = 1;
	const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	if (rc == 0) {
		printf("%s\n", bootstrap);
		fflush(stdout);
		if (cmd) {
			rc = run_child(cmd, bootstrap);
		} else {
			char line[1024];
			size_t used = 0;
			while (!stop_flag) {
				struct pollfd pfd = {.fd = 0, .events = POLLIN};
				int pr = poll(&pfd, 1, 200);
				if (pr <= 0)
					continue;
				ssize_t r = read(0, line + used, sizeof line - 1 - used);
				if (r <= 0)
					break; /* end of stdin: the parent went away */
				used += (size_t)r;
				line[used] = 0;
				char *nl;
				while ((nl = strchr(line, '\n'))) {
					*nl = 0;
					command(mc, line, brokers);
					size_t rest = used - (size_t)(nl + 1 - line);
					memmove(line, nl + 1, rest + 1);
					used = rest;
				}
				if (used == sizeof line - 1)
					used = 0; /* an overlong line: drop it */
			}
		}
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return rc;
}
