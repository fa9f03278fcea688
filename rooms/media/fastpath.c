/* The fan-out's inner loop in C: one encoded packet to many listeners (issue 14, point 1).
 *
 * For each listener of a mix: patch its RTP header (sequence number, timestamp,
 * abs-send-time), protect the packet in place with the listener's libsrtp session, and send
 * it on the listener's socket. Python calls `la_send` once per chunk of listeners instead of
 * doing those three steps per listener (`rooms/media/fastpath.py` holds the rules of when a
 * listener may be sent to this way; `outbound.RtpWire` is the same work in Python).
 *
 * Nothing here owns Python objects. A slot holds what the C loop needs of one listener: the
 * libsrtp session (pylibsrtp's, kept alive by the Python wire that armed the slot), a
 * duplicate of the socket's descriptor (so a socket closed meanwhile never turns into another
 * socket's number), the header template and the counters RTCP sender reports read. The
 * protect function is libsrtp's `srtp_protect` as pylibsrtp's extension links it, whose
 * address Python hands over (no second copy of libsrtp is linked here).
 *
 * Built by scripts/setup with the machine's cc: plain C, libc only.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LA_FASTPATH_VERSION 1
#define HEADER_MAX 64       /* RTP header with mid and abs-send-time: 24 bytes today */
#define PACKET_MAX 2048     /* header + payload + trailer; an Opus audio packet is ~150 */
#define TRAILER_MAX 144     /* libsrtp's SRTP_MAX_TRAILER_LEN: auth tag and MKI */
#define FRAME_SAMPLES 960   /* 20 ms at 48 kHz: one packet per frame */

enum { SENT = 0, NOT_ARMED = 1, NOT_PROTECTED = 2, NOT_TAKEN = 3 };

typedef int (*protect_fn)(void *session, void *packet, int *length);

struct slot {
    int armed;
    int fd;
    void *session;
    uint8_t header[HEADER_MAX];
    int header_length;
    int abs_at; /* where the abs-send-time's 3 bytes are, or -1 */
    uint32_t origin;
    uint16_t sequence;
    int has_last;
    int64_t last_pts;
    struct sockaddr_storage address;
    socklen_t address_length;
    uint64_t sent, octets, dropped;
    uint64_t last_ntp;
    uint32_t last_rtp;
};

struct table {
    protect_fn protect;
    struct slot *slots;
    int capacity;
};

int la_version(void) { return LA_FASTPATH_VERSION; }

struct table *la_table_new(void *protect) {
    struct table *table = calloc(1, sizeof *table);
    if (table) table->protect = (protect_fn)protect;
    return table;
}

void la_table_free(struct table *table) {
    if (!table) return;
    free(table->slots);
    free(table);
}

static int ensure(struct table *table, int index) {
    if (index < table->capacity) return 0;
    int capacity = table->capacity ? table->capacity : 64;
    while (capacity <= index) capacity *= 2;
    struct slot *slots = realloc(table->slots, (size_t)capacity * sizeof *slots);
    if (!slots) return -1;
    memset(slots + table->capacity, 0, (size_t)(capacity - table->capacity) * sizeof *slots);
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

/* Arm slot `index` for one listener; its counters start at zero. -1: bad arguments, or no
 * memory. */
int la_slot_arm(struct table *table, int index, void *session, int fd, const uint8_t *header,
                int header_length, int abs_at, const uint8_t *address, int address_length,
                int sequence, int has_last, int64_t last_pts, uint32_t origin) {
    if (index < 0 || !session || fd < 0 || header_length < 12 || header_length > HEADER_MAX ||
        abs_at > header_length - 3 || address_length <= 0 ||
        address_length > (int)sizeof(struct sockaddr_storage) || ensure(table, index) < 0)
        return -1;
    struct slot *s = &table->slots[index];
    memset(s, 0, sizeof *s);
    s->session = session;
    s->fd = fd;
    memcpy(s->header, header, (size_t)header_length);
    s->header_length = header_length;
    s->abs_at = abs_at;
    memcpy(&s->address, address, (size_t)address_length);
    s->address_length = (socklen_t)address_length;
    s->sequence = (uint16_t)sequence;
    s->has_last = has_last;
    s->last_pts = last_pts;
    s->origin = origin;
    s->armed = 1;
    return 0;
}

void la_slot_disarm(struct table *table, int index) {
    if (index >= 0 && index < table->capacity) table->slots[index].armed = 0;
}

/* What Python reads back: sequence, has_last, last_pts, sent, octets, dropped, last_ntp,
 * last_rtp. */
int la_slot_read(const struct table *table, int index, int64_t out[8]) {
    if (index < 0 || index >= table->capacity) return -1;
    const struct slot *s = &table->slots[index];
    out[0] = s->sequence;
    out[1] = s->has_last;
    out[2] = s->last_pts;
    out[3] = (int64_t)s->sent;
    out[4] = (int64_t)s->octets;
    out[5] = (int64_t)s->dropped;
    out[6] = (int64_t)s->last_ntp;
    out[7] = s->last_rtp;
    return 0;
}

static void put32(uint8_t *at, uint32_t value) {
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

/* Send `payload` (stamped `pts`, the mixer's timeline, and `ntp`, the send time) to the
 * listeners in `indices`; `status[i]` says what became of the i-th. Returns how many went.
 *
 * As in Python: frames skipped since a listener's last packet (a late mixer) take their
 * sequence numbers with them, and a packet the kernel does not take at once is lost, never
 * queued (the listener sees the gap). */
int la_send(struct table *table, const int32_t *indices, int count, const uint8_t *payload,
            int payload_length, int64_t pts, uint64_t ntp, uint8_t *status) {
    uint8_t packet[PACKET_MAX];
    uint32_t abs_send_time = (uint32_t)(ntp >> 14) & 0xFFFFFF;
    int sent = 0;
    for (int i = 0; i < count; i++) {
        int index = indices[i];
        struct slot *s = index >= 0 && index < table->capacity ? &table->slots[index] : NULL;
        if (!s || !s->armed) {
            status[i] = NOT_ARMED;
            continue;
        }
        int64_t frames = 1;
        if (s->has_last && pts - s->last_pts > FRAME_SAMPLES)
            frames = (pts - s->last_pts) / FRAME_SAMPLES;
        s->has_last = 1;
        s->last_pts = pts;
        s->sequence = (uint16_t)(s->sequence + frames);
        int length = s->header_length + payload_length;
        if (payload_length < 0 || length + TRAILER_MAX > PACKET_MAX) {
            s->dropped++;
            status[i] = NOT_PROTECTED;
            continue;
        }
        uint32_t rtp = (uint32_t)((uint64_t)pts + s->origin);
        memcpy(packet, s->header, (size_t)s->header_length);
        packet[2] = (uint8_t)(s->sequence >> 8);
        packet[3] = (uint8_t)s->sequence;
        put32(packet + 4, rtp);
        if (s->abs_at >= 0) {
            packet[s->abs_at] = (uint8_t)(abs_send_time >> 16);
            packet[s->abs_at + 1] = (uint8_t)(abs_send_time >> 8);
            packet[s->abs_at + 2] = (uint8_t)abs_send_time;
        }
        memcpy(packet + s->header_length, payload, (size_t)payload_length);
        if (table->protect(s->session, packet, &length) != 0) {
            s->dropped++; /* libsrtp took the index for a replay: this listener's loss only */
            status[i] = NOT_PROTECTED;
            continue;
        }
        if (sendto(s->fd, packet, (size_t)length, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&s->address, s->address_length) < 0) {
            s->dropped++;
            status[i] = NOT_TAKEN;
            continue;
        }
        s->sent++;
        s->octets += (uint64_t)payload_length;
        s->last_ntp = ntp;
        s->last_rtp = rtp;
        status[i] = SENT;
        sent++;
    }
    return sent;
}
