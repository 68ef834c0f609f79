/*
 * recovery.h — connection state recovery, in process (socket.io's
 * connectionStateRecovery with its in-memory adapter): a log of the packets recently
 * broadcast, each with the offset a client reports back, and the snapshots of sockets
 * that lost their connection, by private id (pid).
 *
 * The log is one per server, for every namespace, bounded by bytes
 * (recovery.max_log_bytes) and by age (recovery.max_disconnection_ms): the oldest
 * entries go first. A snapshot lives for max_disconnection_ms; taken back (a recovery)
 * or expired, it is gone. Service-thread only; no I/O.
 */
#ifndef GW_SIO_RECOVERY_H
#define GW_SIO_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/frame.h"

typedef struct rec_store rec_store;

/* What a socket leaves behind: the one allocation holds every string. */
typedef struct rec_session {
	struct rec_session *prev, *next; /* in expiry order */
	int64_t deadline_ms;
	char *pid, *sid, *nsp, *data; /* data: JSON text or NULL */
	char **rooms;                  /* its own id room included */
	size_t n_rooms;
	uint32_t gen;                  /* recoveries so far */
	bool counted;                  /* in stats.sessions, and stats.expired when it expires */
} rec_session;

typedef struct rec_stats {
	uint64_t recovered, expired, failed;     /* returns, windows passed, returns refused */
	uint64_t too_many;      /* of the refused: more missed frames than max_frames */
	uint64_t evicted;       /* log entries dropped for room before their window passed */
	uint64_t logged;        /* packets ever logged */
	size_t log_packets, log_bytes, sessions; /* now */
} rec_stats;

rec_store *rec_store_create(int64_t window_ms, size_t max_log_bytes);
void rec_store_destroy(rec_store *r);
const rec_stats *rec_store_stats(const rec_store *r);

/* The offset the next logged packet gets, as the client sees it: a JSON string
 * (quotes included) written to out (needs REC_OFFSET_MAX bytes). */
#define REC_OFFSET_MAX 40
void rec_next_offset(const rec_store *r, char *out);

/* Log a broadcast (frames: the packet with its offset, then its attachments; one
 * reference each is taken) to nsp's sockets in rooms and not in except, at now_ms. id:
 * the offset it carries when it is not rec_next_offset's (a bus position, the same on
 * every node), else NULL. Returns 0 or -GW_ENOMEM (nothing logged: such a packet
 * cannot be replayed). */
int rec_log(rec_store *r, int64_t now_ms, const char *id, const char *nsp, const char *const *rooms, size_t n_rooms,
	    const char *const *except, size_t n_except, gw_frame *const *frames, size_t n_frames);

/* Keep a snapshot (the strings are copied) for the window from now_ms, unless the one
 * held for pid has a higher gen. counted: it counts in the stats (sessions, expired);
 * not a copy that another store of the process counts (engine.workers). Returns 0
 * (kept or not) or -GW_ENOMEM. */
int rec_persist(rec_store *r, int64_t now_ms, const char *pid, const char *sid, const char *nsp,
		const char *data, const char *const *rooms, size_t n_rooms, uint32_t gen, bool counted);
/* Drop pid's snapshot, if one is held with at most gen. */
void rec_forget(rec_store *r, const char *pid, uint32_t gen);

/*
 * A returning client's {pid, offset} for nsp: the snapshot, taken out of the store
 * (free it with rec_session_free), when it is there, in its window, of nsp, the
 * offset's packet is still in the log and at most max_frames would be replayed; else
 * NULL (counted as failed; a snapshot of another namespace or whose offset is gone
 * stays until its window passes, one with too much to replay goes).
 * *from: the log position to replay from (for rec_replay).
 */
rec_session *rec_take(rec_store *r, int64_t now_ms, const char *pid, const char *offset, const char *nsp,
		      size_t max_frames, uint64_t *from);
void rec_session_free(rec_session *s);

/* The packets after position from that reached the snapshot's namespace and rooms, in
 * order: fn gets each packet's frames. */
void rec_replay(const rec_store *r, const rec_session *s, uint64_t from,
		void (*fn)(void *arg, gw_frame *const *frames, size_t n), void *arg);

/* Drop what is past its window (snapshots and log entries). Call now and then. */
void rec_expire(rec_store *r, int64_t now_ms);

#endif
