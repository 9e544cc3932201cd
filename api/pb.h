/* pb.h — a small Protocol Buffers writer (what the ONNX export needs, no protobuf library):
 * varints, fixed-width little-endian numbers and length-delimited fields (bytes, strings,
 * nested messages) appended to one growable buffer. Encoding per
 * https://protobuf.dev/programming-guides/encoding/: a field is a tag varint
 * (field_number << 3 | wire_type) then its value; wire type 0 = varint, 2 = length-delimited.
 *
 * Errors are sticky: after an allocation fails every call is a no-op and `oom` stays set, so a
 * writer checks once at the end. Not thread-safe per buffer; no globals.
 */
#ifndef BACKPROPD_PB_H
#define BACKPROPD_PB_H

#include <stddef.h>
#include <stdint.h>

enum { API_PB_VARINT = 0, API_PB_I64 = 1, API_PB_LEN = 2, API_PB_I32 = 5 };

typedef struct {
    unsigned char *buf; /* new (api_pb_release or api_pb_clear) */
    size_t len, cap;
    int oom;            /* an allocation failed: the contents are incomplete */
} api_pb;

/* Frees the buffer; *pb zeroed. NULL is a no-op. */
void api_pb_clear(api_pb *pb);
/* The buffer (new, caller frees) and its length into *len; NULL after an allocation failed
 * (then the buffer is freed). *pb is zeroed either way. */
unsigned char *api_pb_release(api_pb *pb, size_t *len);

/* Bytes a varint of v takes (1..10). */
size_t api_pb_varint_size(uint64_t v);
/* A bare varint (7 bits a byte, low group first, high bit = more follows). */
void api_pb_varint(api_pb *pb, uint64_t v);
/* Raw bytes, no tag. */
void api_pb_raw(api_pb *pb, const void *data, size_t n);
/* A tag: field << 3 | wire. */
void api_pb_tag(api_pb *pb, uint32_t field, unsigned wire);
/* A varint field (int32/int64/uint64/enum/bool: a negative int64 goes as its two's complement,
 * ten bytes, as protobuf encodes int64). */
void api_pb_int(api_pb *pb, uint32_t field, int64_t v);
/* A length-delimited field holding n bytes (bytes, or a string without its NUL). */
void api_pb_bytes(api_pb *pb, uint32_t field, const void *data, size_t n);
void api_pb_string(api_pb *pb, uint32_t field, const char *s);
/* A nested message: api_pb_begin writes the tag and returns a mark; the message's fields
 * follow; api_pb_end(mark) puts the length prefix in front of them (moving them by the
 * varint's size). Begin/end pairs nest. */
size_t api_pb_begin(api_pb *pb, uint32_t field);
void api_pb_end(api_pb *pb, size_t mark);

#endif
