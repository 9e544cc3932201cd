/* pb.c — the Protocol Buffers writer of pb.h: varints, tags, length-delimited fields and
 * nested messages (whose length prefix is inserted in front once their size is known).
 */
#include "api/pb.h"

#include <stdlib.h>
#include <string.h>

void api_pb_clear(api_pb *pb)
{
    if (!pb)
        return;
    free(pb->buf);
    memset(pb, 0, sizeof *pb);
}

unsigned char *api_pb_release(api_pb *pb, size_t *len)
{
    unsigned char *out = pb->oom ? NULL : pb->buf;
    *len = out ? pb->len : 0;
    if (!out)
        free(pb->buf);
    memset(pb, 0, sizeof *pb);
    return out;
}

/* Room for n more bytes; 0 ok, -1 (oom set) when it cannot grow. */
static int reserve(api_pb *pb, size_t n)
{
    if (pb->oom)
        return -1;
    if (n <= pb->cap - pb->len)
        return 0;
    if (n > SIZE_MAX / 2 - pb->len) {
        pb->oom = 1;
        return -1;
    }
    size_t cap = pb->cap ? pb->cap : 256;
    while (cap - pb->len < n)
        cap *= 2;
    unsigned char *nb = realloc(pb->buf, cap);
    if (!nb) {
        pb->oom = 1;
        return -1;
    }
    pb->buf = nb;
    pb->cap = cap;
    return 0;
}

size_t api_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v's varint at p (api_pb_varint_size(v) bytes). */
static void put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p = (unsigned char)v;
}

void api_pb_varint(api_pb *pb, uint64_t v)
{
    size_t n = api_pb_varint_size(v);
    if (reserve(pb, n) < 0)
        return;
    put_varint(pb->buf + pb->len, v);
    pb->len += n;
}

void api_pb_raw(api_pb *pb, const void *data, size_t n)
{
    if (n == 0 || reserve(pb, n) < 0)
        return;
    memcpy(pb->buf + pb->len, data, n);
    pb->len += n;
}

void api_pb_tag(api_pb *pb, uint32_t field, unsigned wire)
{
    api_pb_varint(pb, (uint64_t)field << 3 | (wire & 7u));
}

void api_pb_int(api_pb *pb, uint32_t field, int64_t v)
{
    api_pb_tag(pb, field, API_PB_VARINT);
    api_pb_varint(pb, (uint64_t)v);
}

void api_pb_bytes(api_pb *pb, uint32_t field, const void *data, size_t n)
{
    api_pb_tag(pb, field, API_PB_LEN);
    api_pb_varint(pb, n);
    api_pb_raw(pb, data, n);
}

void api_pb_string(api_pb *pb, uint32_t field, const char *s)
{
    api_pb_bytes(pb, field, s, strlen(s));
}

size_t api_pb_begin(api_pb *pb, uint32_t field)
{
    api_pb_tag(pb, field, API_PB_LEN);
    return pb->len;
}

void api_pb_end(api_pb *pb, size_t mark)
{
    if (pb->oom)
        return;
    size_t body = pb->len - mark;
    size_t n = api_pb_varint_size(body);
    if (reserve(pb, n) < 0)
        return;
    memmove(pb->buf + mark + n, pb->buf + mark, body);
    put_varint(pb->buf + mark, body);
    pb->len += n;
}
